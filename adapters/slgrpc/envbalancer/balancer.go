package envbalancer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
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
	if !c.Config.IsZero() {
		p, err := envtag.NewPolicy(c.Config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Name, err)
		}
		c.policy = p
	}
	return c, nil
}

func (builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	b := &envBalancer{cc: cc, service: opts.Target.Endpoint(), since: map[string]connecting{}, stalls: stallClock()}
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
	policy  *envtag.Policy      // nil: the runtime's at each pick
	rt      *shadowlane.Runtime // named by the resolver state; nil: the default
	invalid int                 // last count of endpoints with a malformed label
	// connect grace (envtag.Config.ConnectGrace)
	last   *balancer.State       // endpointsharding's last aggregated state
	since  map[string]connecting // child key -> when it started connecting
	stalls envtag.StallClock     // stretches the grace by the process's own stalls
	timer  *time.Timer           // rebuilds the picker when a grace ends
	valid  bool                  // a resolver state was accepted
	closed bool
}

// connecting is when a child started connecting: the time and the stall
// clock's reading then.
type connecting struct {
	t0   time.Time
	mark time.Duration
}

// stallClocks holds the StallClock new balancers use (tests set a fake).
var stallClocks atomic.Pointer[envtag.StallClock]

func stallClock() envtag.StallClock {
	if c := stallClocks.Load(); c != nil {
		return *c
	}
	return envtag.ProcessStalls()
}

func (b *envBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	b.mu.Lock()
	if c, ok := s.BalancerConfig.(*Config); ok {
		if c.Service != "" {
			b.service = c.Service
		}
		b.policy = c.policy
	}
	b.rt = runtimeOf(s.ResolverState)
	service, valid := b.service, b.valid
	b.mu.Unlock()
	// One address under two labels: refuse the update, keep the previous
	// endpoints (none yet: fail every call fast, naming the conflict).
	if err := conflicts(s.ResolverState.Endpoints); err != nil {
		err = fmt.Errorf("%s: service %q: resolver update refused, the previous endpoints stay in force: %w", Name, service, err)
		logger.Warning(err)
		if !valid {
			b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure,
				Picker: base.NewErrPicker(status.Error(codes.Unavailable, err.Error()))})
		}
		return balancer.ErrBadResolverState
	}
	b.mu.Lock()
	b.valid = true
	b.mu.Unlock()
	// The children are pick_first: they get only the resolver state, with
	// the health listener enabled as round_robin does.
	return b.Balancer.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

// ResolverError fails every call fast, saying why, while no resolver state
// was ever accepted; after that the children keep their endpoints.
func (b *envBalancer) ResolverError(err error) {
	b.mu.Lock()
	valid := b.valid
	b.mu.Unlock()
	if !valid {
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure,
			Picker: base.NewErrPicker(status.Error(codes.Unavailable, err.Error()))})
		return
	}
	b.Balancer.ResolverError(err)
}

func (b *envBalancer) Close() {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	b.Balancer.Close()
}

// conflicts reports an address that endpoints list under two environment
// labels (see envtag.CheckConflicts).
func conflicts(eps []resolver.Endpoint) error {
	var flat []envtag.Endpoint
	for _, ep := range eps {
		env := labelOf(ep)
		for _, a := range ep.Addresses {
			flat = append(flat, envtag.Endpoint{Addr: a.Addr, Env: env})
		}
	}
	return envtag.CheckConflicts(flat)
}

// ccWrapper intercepts endpointsharding's aggregated state updates.
type ccWrapper struct {
	balancer.ClientConn
	b *envBalancer
}

func (w *ccWrapper) UpdateState(s balancer.State) {
	b := w.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.last = &s
	b.publishLocked()
}

// childKey identifies a child across updates by its addresses and label.
func childKey(ep resolver.Endpoint) string {
	var k strings.Builder
	k.WriteString(labelOf(ep))
	for _, a := range ep.Addresses {
		k.WriteByte('|')
		k.WriteString(a.Addr)
	}
	return k.String()
}

// publishLocked builds the picker from the last aggregated state. A child
// that has been connecting for longer than the connect grace stops
// counting as pending: a call whose allowed environments have nothing
// else fails at once (Unavailable) instead of waiting out its deadline
// for an instance that accepts connections but never answers. The grace
// stretches by the time this process itself was stalled since the child
// started connecting (envtag.StallClock): a starved process does not
// take its own slowness for a dead instance. A timer republishes when the
// next grace ends.
func (b *envBalancer) publishLocked() {
	s := *b.last
	grace := b.policyLocked().ConnectGrace()
	stalled := b.stalls.Stalled() // before now: a stall between them counts
	now := time.Now()
	var next time.Time
	seen := make(map[string]bool, len(b.since))
	children := endpointsharding.ChildStatesFromPicker(s.Picker)
	members := make([]envtag.Member[balancer.Picker], 0, len(children))
	for _, c := range children {
		m := envtag.Member[balancer.Picker]{Env: labelOf(c.Endpoint), Zone: ZoneOf(c.Endpoint), Item: c.State.Picker}
		key := childKey(c.Endpoint)
		switch c.State.ConnectivityState {
		case connectivity.Ready:
		case connectivity.Connecting, connectivity.Idle:
			seen[key] = true
			c, ok := b.since[key]
			if !ok {
				c = connecting{t0: now, mark: stalled}
				b.since[key] = c
			}
			end := c.t0.Add(grace + stalled - c.mark)
			if !now.Before(end) {
				continue // connecting past its grace: not a candidate
			}
			if next.IsZero() || end.Before(next) {
				next = end
			}
			m.Pending = true
		default: // TransientFailure, Shutdown: not a candidate
		}
		if c.State.ConnectivityState == connectivity.TransientFailure || c.State.ConnectivityState == connectivity.Shutdown {
			continue
		}
		members = append(members, m)
	}
	for k := range b.since {
		if !seen[k] {
			delete(b.since, k) // ready, failed or gone: a later connect starts a new grace
		}
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if !next.IsZero() {
		b.timer = time.AfterFunc(next.Sub(now)+time.Millisecond, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !b.closed && b.last != nil {
				b.publishLocked()
			}
		})
	}
	pool := envtag.NewPool(b.service, b.policy, members, b.poolOptionsLocked()...)
	if n := pool.Invalid(); n != b.invalid {
		b.invalid = n
		if n > 0 {
			logger.Warningf("service %q: %d endpoint(s) with a malformed %s label get no traffic", b.service, n, envtag.LabelKey)
		}
	}
	b.cc.UpdateState(balancer.State{ConnectivityState: s.ConnectivityState, Picker: &picker{pool: pool}})
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
