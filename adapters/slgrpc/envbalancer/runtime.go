package envbalancer

import (
	"google.golang.org/grpc/resolver"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
)

// runtimeKey is the resolver-state attribute naming the Runtime the
// balancer works for.
type runtimeKey struct{}

// State is the resolver state of eps for a balancer working for rt: the
// balancer reads its routing from rt's config (when its own balancer
// config has none; reloads included) and counts its picks in rt's
// routing stats (shadowlane.Runtime.RoutingStats), instead of the default
// runtime's. Push it with a manual resolver (r.InitialState, r.UpdateState);
// [NewResolver] with [WithRuntime] reports every set so.
func State(rt *shadowlane.Runtime, eps ...envtag.Endpoint) resolver.State {
	s := resolver.State{Endpoints: Endpoints(eps)}
	if rt != nil {
		s.Attributes = s.Attributes.WithValue(runtimeKey{}, rt)
	}
	return s
}

// runtimeOf is the Runtime s names (nil: the default runtime's routing).
func runtimeOf(s resolver.State) *shadowlane.Runtime {
	rt, _ := s.Attributes.Value(runtimeKey{}).(*shadowlane.Runtime)
	return rt
}

// ResolverOption configures [NewResolver].
type ResolverOption func(*registryBuilder)

// WithRuntime makes the balancer behind [NewResolver]'s resolvers work for
// rt (see [State]). Default: the default runtime's routing and counters.
func WithRuntime(rt *shadowlane.Runtime) ResolverOption {
	return func(b *registryBuilder) { b.rt = rt }
}

// policyLocked is the routing policy in force: the balancer config's, else
// the runtime's (rt's, or the default one's).
func (b *envBalancer) policyLocked() *envtag.Policy {
	switch {
	case b.policy != nil:
		return b.policy
	case b.rt != nil:
		return b.rt.RoutingPolicy()
	}
	return envtag.DefaultPolicy()
}

// poolOptionsLocked bind a pool to the balancer's runtime, when the
// resolver named one.
func (b *envBalancer) poolOptionsLocked() []envtag.PoolOption {
	if b.rt == nil {
		return nil
	}
	return []envtag.PoolOption{envtag.PoolStats(b.rt.RoutingStats()), envtag.PoolPolicyFunc(b.rt.RoutingPolicy)}
}
