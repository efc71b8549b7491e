package envtag

import (
	"context"
	"sort"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shadowlane/shadowlane/internal/capmap"
	"github.com/shadowlane/shadowlane/internal/installed"
	"github.com/shadowlane/shadowlane/propagation"
)

// Result is what one pick did.
type Result uint8

const (
	// Lane: a tagged request served by its own environment.
	Lane Result = iota
	// Fallback: a tagged request served by a configured fallback
	// environment or by trunk.
	Fallback
	// TrunkHit: an untagged request served by trunk.
	TrunkHit
	// Miss: no instance allowed (the request failed with [ErrNoLane]).
	Miss
	numResults
)

func (r Result) String() string {
	switch r {
	case Lane:
		return "lane"
	case Fallback:
		return "fallback"
	case TrunkHit:
		return "trunk"
	case Miss:
		return "miss"
	}
	return "unknown"
}

// maxServices bounds the number of services counted; further services are
// counted under "other".
const maxServices = 1024

type serviceStats struct {
	n    [2][numResults]atomic.Int64 // [class][result]
	zone [2][2]atomic.Int64          // [class][same zone, spilled]
	// pinned load-test picks: [0] served in the pinned zone, [1] refused
	pinned [2]atomic.Int64

	// passive health of the HTTP transport (see [HealthConfig])
	ejections, readmissions, retries, connFailures atomic.Int64
}

// HealthCount is the passive-health record of one downstream service in
// the HTTP [Transport]s of this process (see [HealthConfig]).
type HealthCount struct {
	Service string `json:"service"`
	// ConnFailures counts requests whose connection to an instance failed
	// (nothing was sent).
	ConnFailures int64 `json:"connFailures"`
	// Ejections counts instances taken out of rotation (after Failures
	// consecutive connection failures, or a failed re-probe).
	Ejections int64 `json:"ejections"`
	// Readmissions counts ejected instances put back after a successful
	// re-probe.
	Readmissions int64 `json:"readmissions"`
	// Retries counts requests sent again to another instance of the same
	// lane after a failed attempt.
	Retries int64 `json:"retries"`
}

// Health returns the passive-health counters of service in the default
// [Stats] (zero when nothing was counted).
func Health(service string) HealthCount { return DefaultStats().Health(service) }

// Health returns the passive-health counters of service (zero when
// nothing was counted).
func (st *Stats) Health(service string) HealthCount {
	if st == nil {
		return HealthCount{Service: service}
	}
	s := st.m.Lookup(service)
	if s == nil {
		return HealthCount{Service: service}
	}
	return s.health(service)
}

func (s *serviceStats) health(service string) HealthCount {
	return HealthCount{Service: service, ConnFailures: s.connFailures.Load(), Ejections: s.ejections.Load(),
		Readmissions: s.readmissions.Load(), Retries: s.retries.Load()}
}

func (s *serviceStats) add(m propagation.Mark, r Result) {
	c := 0
	if m.Run != "" {
		c = 1
	}
	s.n[c][r].Add(1)
}

// Stats is one set of pick and passive-health counters. Each shadowlane
// Runtime owns one (Runtime.RoutingStats); transports and pools count in
// the one given with [WithStats] / [PoolStats], else in [DefaultStats]
// (the default Runtime's) as it is when the pool is built. A nil *Stats
// counts nothing. It is safe for concurrent use.
type Stats struct {
	m capmap.Map[string, serviceStats]
}

// NewStats returns an empty set of counters.
func NewStats() *Stats { return new(Stats) }

// The default stats: the function the shadowlane package installs at init
// (its default Runtime's counters). envtag keeps no counters of its own.
var defaultStats installed.Func[Stats]

// SetDefaultStats installs the function [DefaultStats] returns the
// counters of. The shadowlane package calls it at init with its default
// Runtime's; applications have no reason to.
func SetDefaultStats(f func() *Stats) { defaultStats.Set(f) }

// DefaultStats returns the counters used where none are given: the
// default shadowlane Runtime's (nil, counting nothing, when the shadowlane
// package is not linked in and no function was installed).
func DefaultStats() *Stats { return defaultStats.Get() }

// service returns the counters of service; pools resolve it once, so a
// pick is one atomic add. A nil st gives counters nobody reads.
func (st *Stats) service(service string) *serviceStats {
	if st == nil {
		return new(serviceStats)
	}
	return st.m.Get(service, maxServices, func(string) string { return "other" })
}

// Count is one row of [Snapshot]: the picks for one service and traffic
// class (see [propagation.Mark.Class]).
type Count struct {
	Service  string `json:"service"`
	Class    string `json:"class"`
	Lane     int64  `json:"lane"`
	Fallback int64  `json:"fallback"`
	Trunk    int64  `json:"trunk"`
	Miss     int64  `json:"miss"`
	// SameZone and Spilled split the picks of a caller with a zone (see
	// [ZoneSpills]) into those served in its zone and those spilled to
	// another; zero without zone labels.
	SameZone int64 `json:"sameZone,omitempty"`
	Spilled  int64 `json:"spilled,omitempty"`
	// Pinned counts load-test picks of a run pinned to a zone (see
	// [Policy.PinZone]) served in that zone; PinRefused those refused
	// because the zone had no ready instance in the lane (never spilled).
	// Load-test rows only.
	Pinned     int64 `json:"pinned,omitempty"`
	PinRefused int64 `json:"pinRefused,omitempty"`
}

// Snapshot returns the pick counters of every service in the default
// [Stats] (see [Stats.Snapshot]).
func Snapshot() []Count { return DefaultStats().Snapshot() }

// Snapshot returns the pick counters of every service, sorted by service
// and class; rows that are all zero are left out.
func (st *Stats) Snapshot() []Count {
	if st == nil {
		return []Count{}
	}
	out := make([]Count, 0, 2*st.m.Len())
	for svc, s := range st.m.All() {
		for c, class := range [2]string{propagation.ClassProduction, propagation.ClassLoadTest} {
			row := Count{Service: svc, Class: class,
				Lane: s.n[c][Lane].Load(), Fallback: s.n[c][Fallback].Load(),
				Trunk: s.n[c][TrunkHit].Load(), Miss: s.n[c][Miss].Load(),
				SameZone: s.zone[c][0].Load(), Spilled: s.zone[c][1].Load()}
			if c == 1 {
				row.Pinned, row.PinRefused = s.pinned[0].Load(), s.pinned[1].Load()
			}
			if row.Lane|row.Fallback|row.Trunk|row.Miss|row.PinRefused != 0 {
				out = append(out, row)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// Lookup returns the counters of one service and class in the default
// [Stats] (see [Stats.Lookup]).
func Lookup(service, class string) Count { return DefaultStats().Lookup(service, class) }

// Lookup returns the counters of one service and class ("production" or
// "loadtest"); zero when nothing was counted.
func (st *Stats) Lookup(service, class string) Count {
	for _, c := range st.Snapshot() {
		if c.Service == service && c.Class == class {
			return c
		}
	}
	return Count{Service: service, Class: class}
}

// ScopeName is the OpenTelemetry instrumentation scope of envtag's metrics.
const ScopeName = "github.com/shadowlane/shadowlane/envtag"

// RegisterMetrics exposes st as the observable counters
// shadowlane.envtag.picks{service, class, result} and
// shadowlane.envtag.health{service, event} on m (a shadowlane Runtime
// registers its own on its MeterProvider). Unregister the returned
// registration to stop.
func (st *Stats) RegisterMetrics(m metric.Meter) (metric.Registration, error) {
	var err error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, e := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err == nil {
			err = e
		}
		return c
	}
	picks := counter("shadowlane.envtag.picks", "{pick}",
		"Instance picks by environment routing, per downstream service, traffic class and result (lane, fallback, trunk, miss).")
	hc := counter("shadowlane.envtag.health", "{event}",
		"Passive health of the HTTP transport per downstream service: connection failures, ejections, readmissions and retries (attribute event).")
	zc := counter("shadowlane.envtag.zone_picks", "{pick}",
		"Picks by a caller with a zone, per downstream service and traffic class, served in its zone (zone=same) or spilled to another (zone=spilled).")
	pc := counter("shadowlane.envtag.pinned_picks", "{pick}",
		"Load-test picks of runs pinned to a zone (single-room pressure test), per downstream service: served in the pinned zone (result=served) or refused because it had no ready instance in the lane (result=refused; never spilled).")
	if err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, c := range st.Snapshot() {
			if c.Pinned|c.PinRefused != 0 {
				for r, n := range [2]int64{c.Pinned, c.PinRefused} {
					o.ObserveInt64(pc, n, metric.WithAttributes(
						attribute.String("service", c.Service),
						attribute.String("result", [2]string{"served", "refused"}[r])))
				}
			}
			if c.SameZone|c.Spilled != 0 {
				for z, n := range [2]int64{c.SameZone, c.Spilled} {
					o.ObserveInt64(zc, n, metric.WithAttributes(
						attribute.String("service", c.Service),
						attribute.String("class", c.Class),
						attribute.String("zone", [2]string{"same", "spilled"}[z])))
				}
			}
			for r, n := range [...]int64{c.Lane, c.Fallback, c.Trunk, c.Miss} {
				o.ObserveInt64(picks, n, metric.WithAttributes(
					attribute.String("service", c.Service),
					attribute.String("class", c.Class),
					attribute.String("result", Result(r).String())))
			}
		}
		rows := make([]HealthCount, 0, st.m.Len())
		for svc, s := range st.m.All() {
			rows = append(rows, s.health(svc))
		}
		for _, h := range rows {
			for ev, n := range map[string]int64{"conn_failure": h.ConnFailures, "ejection": h.Ejections, "readmission": h.Readmissions, "retry": h.Retries} {
				if n != 0 {
					o.ObserveInt64(hc, n, metric.WithAttributes(attribute.String("service", h.Service), attribute.String("event", ev)))
				}
			}
		}
		return nil
	}, picks, hc, zc, pc)
}
