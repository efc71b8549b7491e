package envbalancer

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// Name is the name the balancer is registered under; select it with
// [DialOption] or a service config naming it in loadBalancingConfig.
const Name = "shadowlane_env"

var logger = grpclog.Component("shadowlane_env")

func init() { balancer.Register(builder{}) }

// Config is the balancer's JSON config in a gRPC service config, e.g.
//
//	{"loadBalancingConfig":[{"shadowlane_env":{"service":"orders","strict":true}}]}
//
// The routing fields are those of [envtag.Config]. A config without any
// routing field follows [envtag.DefaultPolicy] (read at every pick), so
// shadowlane.Init's configuration applies to every connection.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`
	envtag.Config

	// Service names the downstream in counters, errors and per-service
	// strictness. Default: the dial target's endpoint ("orders" for
	// "shadowlane:///orders").
	Service string `json:"service,omitempty"`

	policy *envtag.Policy
}

type builder struct{}

func (builder) Name() string { return Name }

func (builder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	c := &Config{}
	if len(js) > 0 {
		if err := json.Unmarshal(js, c); err != nil {
			return nil, fmt.Errorf("%s: bad config: %w", Name, err)
		}
	}
	if c.Strict || len(c.StrictServices) > 0 || len(c.Fallback) > 0 {
		p, err := envtag.NewPolicy(c.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		c.policy = p
	}
	return c, nil
}

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &envBalancer{cc: cc, service: opts.Target.Endpoint()}
	b.Balancer = endpointsharding.NewBalancer(&ccWrapper{ClientConn: cc, b: b}, opts,
		balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// envBalancer keeps one pick-first child per endpoint (endpointsharding)
// and replaces endpointsharding's round robin picker by one that groups the
// READY children by environment label.
type envBalancer struct {
	balancer.Balancer // endpointsharding
	cc                balancer.ClientConn

	mu      sync.Mutex
	service string
	policy  *envtag.Policy // nil: envtag.DefaultPolicy at each pick
	invalid int            // last count of endpoints with a malformed label
}

func (b *envBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if c, ok := s.BalancerConfig.(*Config); ok {
		b.mu.Lock()
		if c.Service != "" {
			b.service = c.Service
		}
		b.policy = c.policy
		b.mu.Unlock()
	}
	// The children are pick_first: they get only the resolver state, with
	// the health listener enabled as round_robin does.
	return b.Balancer.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

// ccWrapper intercepts endpointsharding's aggregated state updates.
type ccWrapper struct {
	balancer.ClientConn
	b *envBalancer
}

func (w *ccWrapper) UpdateState(s balancer.State) {
	children := endpointsharding.ChildStatesFromPicker(s.Picker)
	members := make([]envtag.Member[balancer.Picker], 0, len(children))
	for _, c := range children {
		m := envtag.Member[balancer.Picker]{Env: labelOf(c.Endpoint), Item: c.State.Picker}
		switch c.State.ConnectivityState {
		case connectivity.Ready:
		case connectivity.Connecting, connectivity.Idle:
			m.Pending = true
		default: // TransientFailure, Shutdown: not a candidate
			continue
		}
		members = append(members, m)
	}
	b := w.b
	b.mu.Lock()
	pool := envtag.NewPool(b.service, b.policy, members)
	if n := pool.Invalid(); n != b.invalid {
		b.invalid = n
		if n > 0 {
			logger.Warningf("service %q: %d endpoint(s) with a malformed %s label get no traffic", b.service, n, envtag.LabelKey)
		}
	}
	b.mu.Unlock()
	w.ClientConn.UpdateState(balancer.State{ConnectivityState: s.ConnectivityState, Picker: &picker{pool: pool}})
}

// picker routes each call by the environment tag of its context.
type picker struct {
	pool *envtag.Pool[balancer.Picker]
}

func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	child, err := p.pool.Pick(propagation.FromContext(info.Ctx))
	if err != nil {
		if errors.Is(err, envtag.ErrPending) {
			// The allowed environment has instances still connecting: wait
			// for the next picker (it comes when they are READY or fail).
			return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
		}
		// A status error ends the call at once, wait-for-ready or not.
		return balancer.PickResult{}, status.Error(codes.Unavailable, err.Error())
	}
	return child.Pick(info)
}
