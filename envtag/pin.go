package envtag

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
)

// The single-room pressure test: a load-test run pinned to one zone.
//
// A pin ([Config.Pin], routing.pin in the shadowlane config) names, per
// load-test run id, the zone whose instances alone serve that run. The env
// rule chooses the lane first, exactly as without pins; within that lane
// a pinned pick goes round robin over the pinned zone's ready instances
// only. When the lane has none (all stopped, ejected or failing), the
// pick fails closed with a [*PinError] (errors.Is [ErrZonePinned] and
// [ErrNoLane]): it never spills to another zone and never moves to another
// lane. Production traffic (no run) and unpinned runs are never affected:
// they keep the same-zone-first rule of [ZoneSpills].
//
// Pins are keyed by run id, and the run id is what the edge's signed token
// vouches for, so a pin is exactly as trustworthy as the run it names and
// needs nothing new on the wire.

// ErrZonePinned is matched (errors.Is) by a [*PinError]: a load-test run
// pinned to a zone found no ready instance of that zone in the lane the
// env rule chose, and was refused rather than spilled.
var ErrZonePinned = errors.New("envtag: no ready instance in the run's pinned zone")

// PinError says why a pinned load-test pick was refused. It matches
// [ErrZonePinned] and [ErrNoLane], and [ErrPending] when the pinned zone
// has instances of the lane that are still connecting.
type PinError struct {
	Service string // the downstream service
	Run     string // the load-test run
	Zone    string // the zone the run is pinned to
	Env     string // the lane the env rule chose ("" = trunk)
	Pending bool   // the pinned zone has instances of the lane not ready yet
}

func (e *PinError) Error() string {
	var b strings.Builder
	b.WriteString("envtag: service ")
	b.WriteString(quote(e.Service))
	b.WriteString(": load-test run ")
	b.WriteString(quote(e.Run))
	b.WriteString(" is pinned to zone ")
	b.WriteString(quote(e.Zone))
	b.WriteString(", which has no ready instance in environment ")
	b.WriteString(quote(envLabel(e.Env)))
	b.WriteString(" (refused, never spilled to another zone)")
	if e.Pending {
		b.WriteString(" (instances connecting)")
	}
	return b.String()
}

func envLabel(env string) string {
	if env == Trunk {
		return "trunk"
	}
	return env
}

// Unwrap returns [ErrZonePinned] and [ErrNoLane].
func (e *PinError) Unwrap() []error { return []error{ErrZonePinned, ErrNoLane} }

// Is matches [ErrPending] when e.Pending is set.
func (e *PinError) Is(target error) bool { return target == ErrPending && e.Pending }

// AnyRun is the [Config.Pin] key that pins every load-test run without an
// entry of its own.
const AnyRun = "*"

// setPin validates and applies the pins of c.
func (p *Policy) setPin(c Config) error {
	for _, run := range slices.Sorted(maps.Keys(c.Pin)) {
		z := c.Pin[run]
		if run != AnyRun && !propagation.ValidID(run) {
			return fmt.Errorf("envtag: pin: run %q: %w", run, propagation.ErrMalformed)
		}
		if z == "" || !propagation.ValidID(z) {
			return fmt.Errorf("envtag: pin %q: zone %q: %w", run, z, propagation.ErrMalformed)
		}
		if p.pin == nil {
			p.pin = make(map[string]string, len(c.Pin))
		}
		p.pin[run] = z
	}
	return nil
}

// PinZone returns the zone load-test run is pinned to ("" = not pinned:
// production traffic, or a run without a pin and no [AnyRun] entry).
func (p *Policy) PinZone(run string) string {
	if p == nil || p.pin == nil || run == "" {
		return ""
	}
	if z, ok := p.pin[run]; ok {
		return z
	}
	return p.pin[AnyRun]
}

// Pins returns a copy of the policy's pins (run id or [AnyRun] -> zone).
func (p *Policy) Pins() map[string]string {
	if p == nil || p.pin == nil {
		return nil
	}
	return maps.Clone(p.pin)
}

// pickPinned is [Pool.PickEnv] for a load-test mark whose run is pinned
// to zone: the lane is chosen by the env rule, the instance only among
// the lane's ready instances in zone.
func (p *Pool[T]) pickPinned(m propagation.Mark, pol *Policy, zone string) (T, string, error) {
	g, env, res := p.chooseLane(m, pol)
	if g == nil {
		return p.miss(m, pol)
	}
	for i := range g.byZone {
		if l := &g.byZone[i]; l.zone == zone && len(l.ready) > 0 {
			p.stats.add(m, res)
			p.stats.pinned[0].Add(1)
			return l.pick(), env, nil
		}
	}
	e := &PinError{Service: p.service, Run: m.Run, Zone: zone, Env: env, Pending: slices.Contains(g.pendZones, zone)}
	if !e.Pending {
		p.stats.pinned[1].Add(1)
	}
	var zero T
	return zero, "", e
}

// chooseLane is the env rule of [Pool.PickEnv]: the group serving m, its
// label and the result it counts as; nil when no lane is allowed.
func (p *Pool[T]) chooseLane(m propagation.Mark, pol *Policy) (*group[T], string, Result) {
	if m.Env == Trunk {
		if g := p.trunk; g.ok() {
			return g, Trunk, TrunkHit
		}
		return nil, "", Miss
	}
	if g := p.lane(m.Env); g.ok() {
		return g, m.Env, Lane
	}
	if pol.Strict(p.service) {
		return nil, "", Miss
	}
	for _, f := range pol.Fallbacks(m.Env) {
		if g := p.lane(f); g.ok() {
			return g, f, Fallback
		}
	}
	if g := p.trunk; g.ok() {
		return g, Trunk, Fallback
	}
	return nil, "", Miss
}

// AnotherFor is [Pool.Another] for a request carrying mark m: when m's run
// is pinned to a zone (see [Policy.PinZone]) only that zone's instances of
// the lane are candidates, so a retry never leaves the pinned zone.
func (p *Pool[T]) AnotherFor(m propagation.Mark, env string, skip func(T) bool) (item T, ok bool) {
	if p == nil || m.Run == "" {
		return p.Another(env, skip)
	}
	zone := p.currentPolicy().PinZone(m.Run)
	if zone == "" {
		return p.Another(env, skip)
	}
	g := p.group(env)
	if !g.ok() {
		return item, false
	}
	return g.anotherIn(zone, skip)
}
