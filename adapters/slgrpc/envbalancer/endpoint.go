package envbalancer

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/shadowlane/shadowlane/envtag"
)

// envKey is the resolver.Endpoint attribute key of the environment label;
// its value is a string (comparable, as attributes require).
type envKey struct{}

// WithEnv returns ep labelled with environment env ("" = trunk). Resolvers
// call it on every endpoint they report; endpoints without the label are
// trunk.
func WithEnv(ep resolver.Endpoint, env string) resolver.Endpoint {
	ep.Attributes = ep.Attributes.WithValue(envKey{}, env)
	return ep
}

// EnvOf returns ep's environment label ("" = trunk or unlabelled) and
// whether a label is present.
func EnvOf(ep resolver.Endpoint) (string, bool) {
	v := ep.Attributes.Value(envKey{})
	if v == nil {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// labelOf returns the label the balancer groups ep under; a label of the
// wrong type maps to a value envtag rejects, so the endpoint gets nothing.
func labelOf(ep resolver.Endpoint) string {
	v := ep.Attributes.Value(envKey{})
	if v == nil {
		return envtag.Trunk
	}
	if s, ok := v.(string); ok {
		return s
	}
	return "\x00"
}

// Endpoint returns a resolver.Endpoint for the given addresses labelled env.
func Endpoint(env string, addrs ...string) resolver.Endpoint {
	ep := resolver.Endpoint{Addresses: make([]resolver.Address, len(addrs))}
	for i, a := range addrs {
		ep.Addresses[i] = resolver.Address{Addr: a}
	}
	return WithEnv(ep, env)
}

// Endpoints converts registry endpoints to labelled resolver endpoints.
func Endpoints(eps []envtag.Endpoint) []resolver.Endpoint {
	out := make([]resolver.Endpoint, len(eps))
	for i, e := range eps {
		out[i] = Endpoint(e.Env, e.Addr)
		if e.Zone != "" {
			out[i] = WithZone(out[i], e.Zone)
		}
	}
	return out
}

// ManualResolver returns a grpc manual resolver for scheme that starts with
// eps; push later sets with [Update]. For tests and static configuration:
//
//	r := envbalancer.ManualResolver("static", eps...)
//	conn, err := grpc.NewClient("static:///orders", grpc.WithResolvers(r), envbalancer.DialOption(), ...)
func ManualResolver(scheme string, eps ...envtag.Endpoint) *manual.Resolver {
	r := manual.NewBuilderWithScheme(scheme)
	r.InitialState(resolver.State{Endpoints: Endpoints(eps)})
	return r
}

// Update replaces the endpoints a [ManualResolver] reports. The resolver
// must have been built (the client connection exists).
func Update(r *manual.Resolver, eps ...envtag.Endpoint) {
	r.UpdateState(resolver.State{Endpoints: Endpoints(eps)})
}

// ServiceConfig is the default service config selecting the balancer with
// the routing of [envtag.DefaultPolicy].
const ServiceConfig = `{"loadBalancingConfig":[{"` + Name + `":{}}]}`

// DialOption selects the balancer for a client connection (as its default
// service config; a service config from the resolver takes precedence).
func DialOption() grpc.DialOption { return grpc.WithDefaultServiceConfig(ServiceConfig) }

// ServiceConfigFor returns a service config selecting the balancer with
// routing c for service ("" = the dial target's endpoint).
func ServiceConfigFor(c envtag.Config, service string) (string, error) {
	if _, err := envtag.NewPolicy(c); err != nil {
		return "", err
	}
	lb := Config{Config: c, Service: service}
	js, err := json.Marshal(map[string]any{"loadBalancingConfig": []any{map[string]any{Name: lb}}})
	if err != nil {
		return "", fmt.Errorf("%s: %w", Name, err)
	}
	return string(js), nil
}
