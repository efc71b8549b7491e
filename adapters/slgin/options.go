package slgin

import (
	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/entryopt"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// Option configures [Middleware] and [Limit]. Each uses the options that
// concern it and ignores the others, so one set of options can serve both.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	entryopt.Config
	blocked func(*gin.Context, *limiter.BlockError) // Limit
	failure func(*gin.Context) bool                 // Limit
}

func newConfig(opts []Option) *config {
	c := &config{blocked: tooMany, failure: serverError}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

func entryOption(o middleware.Option) Option {
	return optionFunc(func(c *config) { c.Add(o) })
}

// WithRuntime names the runtime the middleware works for: [Middleware]
// admits requests with its trust settings and kill switch, [Limit] admits
// them through its limiter (rules from its "limits:" config section). The
// default is the default runtime, looked up per request.
func WithRuntime(rt *shadowlane.Runtime) Option {
	return optionFunc(func(c *config) { c.SetRuntime(rt) })
}

// Edge is WithTrust(propagation.Edge): a run mark is accepted only with a
// valid token (see middleware.Edge).
func Edge() Option { return entryOption(middleware.Edge()) }

// Internal is WithTrust(propagation.Internal): marks are taken as sent
// (see middleware.Internal).
func Internal() Option { return entryOption(middleware.Internal()) }

// WithTrust sets the trust policy of [Middleware] (see middleware.WithTrust).
func WithTrust(t propagation.Trust) Option { return entryOption(middleware.WithTrust(t)) }

// WithName labels the entry of [Middleware] in logs (default "gin").
func WithName(name string) Option { return entryOption(middleware.WithName(name)) }

// WithLimiter makes [Limit] admit requests through l instead of the
// runtime's limiter.
func WithLimiter(l *limiter.Limiter) Option {
	return optionFunc(func(c *config) { c.SetLimiter(l) })
}

// WithBlockedHandler replaces the default refusal of [Limit] (429 with a
// short text body). Retry-After and the RateLimit headers are set before it
// is called; it must abort the context.
func WithBlockedHandler(fn func(*gin.Context, *limiter.BlockError)) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.blocked = fn
		}
	})
}

// WithFailure decides which completed requests count as errors for
// breakers and metrics in [Limit] (default: status ≥ 500; a panic always
// counts).
func WithFailure(fn func(*gin.Context) bool) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.failure = fn
		}
	})
}
