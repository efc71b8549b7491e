package slgorm

import "github.com/shadowlane/shadowlane"

// Option configures a [Plugin] ([New], [NewDatabase]).
type Option interface{ apply(*Plugin) }

type optionFunc func(*Plugin)

func (f optionFunc) apply(p *Plugin) { f(p) }

// WithRuntime names the runtime the plugin works for: the lost-mark
// guard's testData rules and catches, and the decisions the plugin counts
// itself (redirects to the shadow database, refused transactions). The
// default is the default runtime, looked up per statement. The Rewriter
// counts its own decisions where it was told ([sqlshadow.WithDecisions];
// pass func() *shadow.Series { return rt.Decisions() } for the same
// runtime).
func WithRuntime(rt *shadowlane.Runtime) Option {
	return optionFunc(func(p *Plugin) { p.rt = rt })
}
