package slgrpc

import (
	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/entryopt"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// Option configures the interceptors of this package (admission:
// [ServerOptions], [DialOptions] and the four interceptors; limiting:
// [UnaryServerLimit] and the other limit interceptors). Each uses the
// options that concern it and ignores the others, so one set of options
// can serve both.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	entryopt.Config
	failure func(error) bool // limiting
}

func newConfig(opts []Option) *config {
	c := &config{failure: IsServerFailure}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

func entryOption(o middleware.Option) Option {
	return optionFunc(func(c *config) { c.Add(o) })
}

// WithRuntime names the runtime the interceptors work for: the admission
// interceptors admit calls with its trust settings and kill switch, the
// limit interceptors admit them through its limiter (rules from its
// "limits:" config section). The default is the default runtime, looked
// up per call.
func WithRuntime(rt *shadowlane.Runtime) Option {
	return optionFunc(func(c *config) { c.SetRuntime(rt) })
}

// Edge is WithTrust(propagation.Edge): a run mark is accepted only with a
// valid token (see middleware.Edge).
func Edge() Option { return entryOption(middleware.Edge()) }

// Internal is WithTrust(propagation.Internal): marks are taken as sent
// (see middleware.Internal).
func Internal() Option { return entryOption(middleware.Internal()) }

// WithTrust sets the trust policy of the server interceptors (see
// middleware.WithTrust).
func WithTrust(t propagation.Trust) Option { return entryOption(middleware.WithTrust(t)) }

// WithName labels the entry in logs (default "grpc", "grpc-client").
func WithName(name string) Option { return entryOption(middleware.WithName(name)) }

// WithLimiter makes the limit interceptors admit calls through l instead
// of the runtime's limiter.
func WithLimiter(l *limiter.Limiter) Option {
	return optionFunc(func(c *config) { c.SetLimiter(l) })
}

// WithFailure decides which call errors count as failures for breakers
// and metrics in the limit interceptors (default [IsServerFailure]).
func WithFailure(fn func(error) bool) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.failure = fn
		}
	})
}
