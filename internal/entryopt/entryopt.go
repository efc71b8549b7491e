package entryopt

import (
	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/middleware"
)

// Config is what the shared entry options set.
type Config struct {
	// Entry are the inbound pipeline's options (admission).
	Entry []middleware.Option
	rt    *shadowlane.Runtime
	l     *limiter.Limiter
}

// Add adds an option of the inbound pipeline (trust, name, ...).
func (c *Config) Add(o middleware.Option) { c.Entry = append(c.Entry, o) }

// SetRuntime names the runtime of both halves: admission (its trust
// settings and kill switch) and limiting (its limiter, when none is set).
func (c *Config) SetRuntime(rt *shadowlane.Runtime) {
	c.rt = rt
	c.Add(middleware.WithRuntime(rt))
}

// SetLimiter makes limiting admit through l instead of the runtime's
// limiter.
func (c *Config) SetLimiter(l *limiter.Limiter) { c.l = l }

// Limiter returns the limiter in use now: the one set, else the runtime's
// (the default runtime's when none was named), looked up at each call so
// that a reload's limiter applies.
func (c *Config) Limiter() *limiter.Limiter {
	if c.l != nil {
		return c.l
	}
	return shadowlane.OrDefault(c.rt).Limiter()
}
