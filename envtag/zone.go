package envtag

import (
	"fmt"
	"math"
	"os"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/propagation"
)

// ZoneEnvVar is the environment variable that names the zone (room, rack,
// availability zone) this process runs in; the shadowlane package overlays
// it on routing.zone, like its other SHADOWLANE_* variables.
const ZoneEnvVar = "SHADOWLANE_ZONE"

// SelfZone returns this process's zone from [ZoneEnvVar] ("" = none). A
// value that is not 1..64 bytes of [A-Za-z0-9_-] is an error wrapping
// [propagation.ErrMalformed].
func SelfZone() (string, error) { return ParseZone(os.Getenv(ZoneEnvVar)) }

// ParseZone validates a zone label: "" (no zone) or a valid id (see
// [propagation.ValidID]).
func ParseZone(v string) (string, error) {
	if v == "" || propagation.ValidID(v) {
		return v, nil
	}
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return "", fmt.Errorf("envtag: zone label %q: %w", v, propagation.ErrMalformed)
}

// ZoneSpills is the same-zone rule, used by every [Pool] (so by the HTTP
// [Transport] and the gRPC balancer alike). Within the one environment
// lane already chosen by the env rule, let healthy be the number of its
// ready (healthy, not ejected, not connecting) instances and local the
// number of those in the caller's zone. The pick stays in the caller's
// zone unless it spills, which it does when
//
//	local == 0  ||  local < fraction × healthy
//
// and a spilled pick goes round robin over all healthy instances of the
// lane (every zone). fraction 0 spills only when the caller's zone has no
// healthy instance left in the lane; 0.5 spills as soon as fewer than half
// of the lane's healthy instances are local (two zones of two instances
// each: losing one local instance, 1 < 0.5×3, spills). Zone never widens
// the choice beyond the lane: env lanes are decided before it, and a lane
// with no healthy instance is a miss or a fallback exactly as without
// zones.
func ZoneSpills(local, healthy int, fraction float64) bool {
	return local == 0 || float64(local) < fraction*float64(healthy)
}

// Zone returns the caller's zone of the policy ("" = no zone preference).
func (p *Policy) Zone() string {
	if p == nil {
		return ""
	}
	return p.zone
}

// ZoneSpill returns the spill fraction of the policy (see [ZoneSpills]).
func (p *Policy) ZoneSpill() float64 {
	if p == nil {
		return 0
	}
	return p.zoneSpill
}

// setZone validates and applies the zone fields of c.
func (p *Policy) setZone(c Config) error {
	z, err := ParseZone(c.Zone)
	if err != nil {
		return err
	}
	f := c.ZoneSpill
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("envtag: zoneSpill %v: want a fraction in [0, 1]", f)
	}
	p.zone, p.zoneSpill = z, f
	return nil
}

// zoneSet is the ready instances of one zone within a group.
type zoneSet[T any] struct {
	zone  string
	ready []T
	next  atomic.Uint32
}

func (z *zoneSet[T]) pick() T {
	if len(z.ready) == 1 {
		return z.ready[0]
	}
	return z.ready[z.next.Add(1)%uint32(len(z.ready))]
}

// addZoned records a ready member's zone in g (called while building).
func (g *group[T]) addZoned(zone string, item T) {
	if zone != "" && g.zones == nil {
		g.zones = make([]string, len(g.ready)-1, cap(g.ready))
	}
	if g.zones != nil {
		g.zones = append(g.zones, zone)
	}
	if zone == "" {
		return
	}
	for i := range g.byZone {
		if g.byZone[i].zone == zone {
			g.byZone[i].ready = append(g.byZone[i].ready, item)
			return
		}
	}
	g.byZone = append(g.byZone, zoneSet[T]{zone: zone, ready: []T{item}})
}

// pickIn picks in g under the zone rule. Groups without any zoned
// instance take the plain round robin without reading the policy.
func (p *Pool[T]) pickIn(g *group[T], m propagation.Mark, pol *Policy) T {
	if g.byZone == nil {
		return g.pick()
	}
	if pol == nil {
		pol = p.currentPolicy()
	}
	z := pol.Zone()
	if z == "" {
		return g.pick()
	}
	for i := range g.byZone {
		if l := &g.byZone[i]; l.zone == z {
			if !ZoneSpills(len(l.ready), len(g.ready), pol.ZoneSpill()) {
				p.stats.addZone(m, true)
				return l.pick()
			}
			break
		}
	}
	i := 0
	if n := len(g.ready); n > 1 {
		i = int(g.next.Add(1) % uint32(n))
	}
	p.stats.addZone(m, g.zones[i] == z)
	return g.ready[i]
}

func (s *serviceStats) addZone(m propagation.Mark, same bool) {
	c, r := 0, 1
	if m.Run != "" {
		c = 1
	}
	if same {
		r = 0
	}
	s.zone[c][r].Add(1)
}

// ZoneCount is the zone record of one service and traffic class (see
// [Stats.Zone]).
type ZoneCount struct {
	Service string `json:"service"`
	Class   string `json:"class"`
	// SameZone counts picks served by an instance in the caller's zone.
	SameZone int64 `json:"sameZone"`
	// Spilled counts picks served by an instance of another zone (or of
	// none) because the caller's zone held too few of the lane's healthy
	// instances (see [ZoneSpills]).
	Spilled int64 `json:"spilled"`
	// Pinned and PinRefused count the picks of load-test runs pinned to a
	// zone: served there, or refused for want of a ready instance there
	// (class "loadtest" only; see [Policy.PinZone]).
	Pinned     int64 `json:"pinned,omitempty"`
	PinRefused int64 `json:"pinRefused,omitempty"`
}

// Zone returns the same-zone and spilled pick counts of service and class
// ("production" or "loadtest"). Only picks in lanes where at least one
// instance carries a zone label, by a caller that has a zone, are counted.
func (st *Stats) Zone(service, class string) ZoneCount {
	out := ZoneCount{Service: service, Class: class}
	if st == nil {
		return out
	}
	s := st.m.Lookup(service)
	if s == nil {
		return out
	}
	c := 0
	if class == propagation.ClassLoadTest {
		c = 1
	}
	out.SameZone, out.Spilled = s.zone[c][0].Load(), s.zone[c][1].Load()
	if c == 1 {
		out.Pinned, out.PinRefused = s.pinned[0].Load(), s.pinned[1].Load()
	}
	return out
}

// anotherLocal is [Pool.Another] within the caller's zone of g: a retry
// tries the other local instances of the lane before the rest of it.
func (p *Pool[T]) anotherLocal(g *group[T], skip func(T) bool) (item T, ok bool) {
	if g.byZone == nil {
		return item, false
	}
	z := p.currentPolicy().Zone()
	if z == "" {
		return item, false
	}
	return g.anotherIn(z, skip)
}

// anotherIn returns a ready instance of g in zone for which skip reports
// false, continuing that zone's round robin; ok is false when there is
// none.
func (g *group[T]) anotherIn(zone string, skip func(T) bool) (item T, ok bool) {
	for i := range g.byZone {
		if l := &g.byZone[i]; l.zone == zone {
			n := len(l.ready)
			if n == 0 {
				break
			}
			start := int(l.next.Add(1) % uint32(n))
			for j := 0; j < n; j++ {
				if c := l.ready[(start+j)%n]; skip == nil || !skip(c) {
					return c, true
				}
			}
			break
		}
	}
	return item, false
}
