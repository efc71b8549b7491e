package envtag

import (
	"math/rand/v2"
	"sort"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/propagation"
)

// Member is one candidate of a [Pool]: an item (an endpoint, a gRPC child
// picker, ...) with the environment label of the instance behind it.
// Pending marks an instance that is known but not ready yet (connecting):
// it is never picked, but a request whose allowed environments have only
// pending instances gets an error matching [ErrPending] rather than a plain
// miss, so a balancer can wait for it.
type Member[T any] struct {
	Env     string
	Item    T
	Pending bool
	// Zone is the instance's zone label ("" = none; a malformed label
	// counts as none): within its lane, picks prefer the caller's zone
	// (see [ZoneSpills]).
	Zone string
}

// Pool is an immutable snapshot of one service's instances grouped by
// environment, with the selection rule: a tagged request goes to a ready
// instance of its own environment; else (unless the service is strict) to
// the tag's configured fallback environments in order, then to trunk; else
// it fails with [ErrNoLane]. An untagged request goes to trunk or fails: it
// never reaches a project instance, whatever else is ready. Within an
// environment picks rotate round robin.
//
// Build a new Pool whenever the instances change; Pick is safe for
// concurrent use and does not allocate when it succeeds.
type Pool[T any] struct {
	service  string
	policy   *Policy
	policyFn func() *Policy // when policy is nil; nil: DefaultPolicy
	stats    *serviceStats
	trunk    *group[T]
	lanes    map[string]*group[T]
	few      []lane[T] // the lanes when there are at most maxScan: a scan beats hashing
	invalid  int
}

// maxScan is the number of environments up to which a lookup scans a slice
// instead of hashing into the map.
const maxScan = 8

type lane[T any] struct {
	env string
	g   *group[T]
}

type group[T any] struct {
	ready   []T
	pending int
	next    atomic.Uint32
	zones   []string     // zone of each ready member; nil when none has one
	byZone  []zoneSet[T] // ready members per zone; nil when none has one
	// zones of the pending members (a pinned pick waits for them)
	pendZones []string
}

func (g *group[T]) ok() bool { return g != nil && len(g.ready) > 0 }

func (g *group[T]) pick() T {
	if len(g.ready) == 1 {
		return g.ready[0]
	}
	return g.ready[g.next.Add(1)%uint32(len(g.ready))]
}

// PoolOption configures [NewPool].
type PoolOption func(*poolConfig)

type poolConfig struct {
	stats    *Stats
	policyFn func() *Policy
}

// PoolStats makes the pool count its picks in st (a Runtime's
// RoutingStats) instead of [DefaultStats].
func PoolStats(st *Stats) PoolOption { return func(c *poolConfig) { c.stats = st } }

// PoolPolicyFunc makes a pool without a policy read it from f at each pick
// (a Runtime's RoutingPolicy: its routing config, reloads included)
// instead of [DefaultPolicy].
func PoolPolicyFunc(f func() *Policy) PoolOption { return func(c *poolConfig) { c.policyFn = f } }

// NewPool groups members for service. policy nil means [DefaultPolicy], read
// at every pick (pass &Policy{} to pin the default rule). Members whose Env
// is not a valid label (see [ParseEnv]) are left out of every group,
// trunk included: an instance with an untrustworthy label never receives
// untagged traffic. [Pool.Invalid] counts them.
//
// Picks are counted in the [Stats] given with [PoolStats], else in
// [DefaultStats] as it is now.
func NewPool[T any](service string, policy *Policy, members []Member[T], opts ...PoolOption) *Pool[T] {
	var c poolConfig
	for _, o := range opts {
		o(&c)
	}
	st := c.stats
	if st == nil {
		st = DefaultStats()
	}
	p := &Pool[T]{service: service, policy: policy, policyFn: c.policyFn, stats: st.service(service)}
	for _, m := range members {
		if _, err := ParseEnv(m.Env); err != nil {
			p.invalid++
			continue
		}
		var g *group[T]
		if m.Env == Trunk {
			if p.trunk == nil {
				p.trunk = new(group[T])
			}
			g = p.trunk
		} else {
			if p.lanes == nil {
				p.lanes = map[string]*group[T]{}
			}
			if g = p.lanes[m.Env]; g == nil {
				g = new(group[T])
				p.lanes[m.Env] = g
			}
		}
		if m.Pending {
			g.pending++
			if z, err := ParseZone(m.Zone); err == nil && z != "" {
				g.pendZones = append(g.pendZones, z)
			}
		} else {
			g.ready = append(g.ready, m.Item)
			if z, err := ParseZone(m.Zone); err == nil {
				g.addZoned(z, m.Item)
			} else {
				g.addZoned("", m.Item)
			}
		}
	}
	if len(p.lanes) <= maxScan {
		for env, g := range p.lanes {
			p.few = append(p.few, lane[T]{env, g})
		}
	}
	// Start each group at a random offset so that many clients built at
	// the same moment do not all hit the same first instance.
	p.each(func(g *group[T]) {
		if n := len(g.ready); n > 1 {
			g.next.Store(uint32(rand.IntN(n)))
		}
		for i := range g.byZone {
			if n := len(g.byZone[i].ready); n > 1 {
				g.byZone[i].next.Store(uint32(rand.IntN(n)))
			}
		}
	})
	return p
}

func (p *Pool[T]) each(f func(*group[T])) {
	if p.trunk != nil {
		f(p.trunk)
	}
	for _, g := range p.lanes {
		f(g)
	}
}

// Service returns the service the pool routes to.
func (p *Pool[T]) Service() string { return p.service }

// Invalid returns the number of members left out for a malformed label.
func (p *Pool[T]) Invalid() int { return p.invalid }

// Ready returns the number of ready instances labelled env.
func (p *Pool[T]) Ready(env string) int {
	if g := p.group(env); g != nil {
		return len(g.ready)
	}
	return 0
}

// Envs returns the labels that have at least one ready instance, sorted
// ("" = trunk first).
func (p *Pool[T]) Envs() []string {
	var out []string
	if p.trunk.ok() {
		out = append(out, Trunk)
	}
	for e, g := range p.lanes {
		if g.ok() {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

func (p *Pool[T]) group(env string) *group[T] {
	if env == Trunk {
		return p.trunk
	}
	return p.lane(env)
}

func (p *Pool[T]) lane(env string) *group[T] {
	if len(p.lanes) <= maxScan {
		for i := range p.few {
			if len(p.few[i].env) == len(env) && p.few[i].env == env {
				return p.few[i].g
			}
		}
		return nil
	}
	return p.lanes[env]
}

// Pick chooses an instance for a request carrying mark m (m.Env is the
// tag; m.Run only selects the traffic class the pick is counted under).
// The error is a [*RouteError] (errors.Is [ErrNoLane], and [ErrPending]
// when instances are still connecting).
func (p *Pool[T]) Pick(m propagation.Mark) (T, error) {
	item, _, err := p.PickEnv(m)
	return item, err
}

// PickEnv is [Pool.Pick] that also returns the environment label of the
// chosen instance ("" = trunk), the lane that a retry must stay in (see
// [Pool.Another]).
func (p *Pool[T]) PickEnv(m propagation.Mark) (T, string, error) {
	if p == nil {
		var zero T
		return zero, "", &RouteError{Tag: m.Env, Tried: []string{Trunk}}
	}
	if m.Run != "" {
		if pol := p.currentPolicy(); pol != nil && pol.pin != nil {
			if z := pol.PinZone(m.Run); z != "" {
				return p.pickPinned(m, pol, z)
			}
		}
	}
	if m.Env == Trunk {
		if g := p.trunk; g.ok() {
			p.stats.add(m, TrunkHit)
			return p.pickIn(g, m, nil), Trunk, nil
		}
		return p.miss(m, p.currentPolicy())
	}
	if g := p.lane(m.Env); g.ok() {
		p.stats.add(m, Lane)
		return p.pickIn(g, m, nil), m.Env, nil
	}
	pol := p.currentPolicy()
	if pol.Strict(p.service) {
		return p.miss(m, pol)
	}
	for _, f := range pol.Fallbacks(m.Env) {
		if g := p.lane(f); g.ok() {
			p.stats.add(m, Fallback)
			return p.pickIn(g, m, pol), f, nil
		}
	}
	if g := p.trunk; g.ok() {
		p.stats.add(m, Fallback)
		return p.pickIn(g, m, pol), Trunk, nil
	}
	return p.miss(m, pol)
}

// Another returns a ready instance labelled env (exactly that label: ""
// is trunk) for which skip reports false, continuing the round robin; ok
// is false when there is none; with a caller zone (see [ZoneSpills]) the
// other instances of that zone come first. It is how a request that failed on one
// instance is retried on another instance of the same lane, never in
// another environment. It is not counted as a pick.
func (p *Pool[T]) Another(env string, skip func(T) bool) (item T, ok bool) {
	if p == nil {
		return item, false
	}
	g := p.group(env)
	if !g.ok() {
		return item, false
	}
	if c, ok := p.anotherLocal(g, skip); ok {
		return c, true
	}
	n := len(g.ready)
	start := int(g.next.Add(1) % uint32(n))
	for i := 0; i < n; i++ {
		if c := g.ready[(start+i)%n]; skip == nil || !skip(c) {
			return c, true
		}
	}
	return item, false
}

// currentPolicy is the policy in force for this pick.
func (p *Pool[T]) currentPolicy() *Policy {
	if p.policy != nil {
		return p.policy
	}
	if p.policyFn != nil {
		return p.policyFn()
	}
	return DefaultPolicy()
}

func (p *Pool[T]) miss(m propagation.Mark, pol *Policy) (T, string, error) {
	e := &RouteError{Service: p.service, Tag: m.Env, Tried: pol.Chain(p.service, m.Env)}
	e.Strict = m.Env != "" && pol.Strict(p.service)
	for _, env := range e.Tried {
		if g := p.group(env); g != nil && g.pending > 0 {
			e.Pending = true
		}
	}
	if !e.Pending {
		p.stats.add(m, Miss)
	}
	var zero T
	return zero, "", e
}
