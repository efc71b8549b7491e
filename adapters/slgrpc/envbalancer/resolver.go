package envbalancer

import (
	"context"
	"fmt"

	"google.golang.org/grpc/resolver"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
)

// Scheme is the default scheme of [NewResolver]'s builder:
// "shadowlane:///orders" resolves service "orders" from the registry.
const Scheme = "shadowlane"

// NewResolver returns a resolver builder that watches a service's endpoints
// in reg (the service is the target's endpoint: "shadowlane:///orders") and
// reports each set to gRPC with environment labels, so instances coming
// and going update routing without restarts. Pass it with
// grpc.WithResolvers, or register it once with resolver.Register.
// scheme "" means [Scheme]. With [WithRuntime] the balancer works for that
// runtime (see [State]).
func NewResolver(reg envtag.Registry, scheme string, opts ...ResolverOption) resolver.Builder {
	if scheme == "" {
		scheme = Scheme
	}
	b := &registryBuilder{reg: reg, scheme: scheme}
	for _, o := range opts {
		o(b)
	}
	return b
}

type registryBuilder struct {
	reg    envtag.Registry
	scheme string
	rt     *shadowlane.Runtime // WithRuntime
}

func (b *registryBuilder) Scheme() string { return b.scheme }

func (b *registryBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := t.Endpoint()
	if service == "" {
		return nil, fmt.Errorf("%s: target %q names no service (want %s:///service)", Name, t.URL.String(), b.scheme)
	}
	ctx, cancel := context.WithCancel(context.Background())
	accepted := false // a set was passed on (updates are never concurrent)
	err := b.reg.Watch(ctx, service, func(eps []envtag.Endpoint) {
		if err := envtag.CheckConflicts(eps); err != nil {
			// A registry that does not check: refuse the set, keep the
			// previous one; with none yet, calls fail fast saying why.
			err = fmt.Errorf("%s: service %q: registry update refused, the previous endpoints stay in force: %w", Name, service, err)
			logger.Warning(err)
			if !accepted {
				cc.ReportError(err)
			}
			return
		}
		accepted = true
		if err := cc.UpdateState(State(b.rt, eps...)); err != nil && len(eps) > 0 {
			logger.Infof("service %q: update of %d endpoints: %v", service, len(eps), err)
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: watch %q: %w", Name, service, err)
	}
	return registryResolver{cancel}, nil
}

type registryResolver struct{ cancel context.CancelFunc }

func (registryResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (r registryResolver) Close()                              { r.cancel() }
