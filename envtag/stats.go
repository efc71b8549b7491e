package envtag

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

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
	n [2][numResults]atomic.Int64 // [class][result]

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

// Health returns the passive-health counters of service (zero when
// nothing was counted).
func Health(service string) HealthCount {
	statsMu.RLock()
	s := statsMap[service]
	statsMu.RUnlock()
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

var (
	statsMu  sync.RWMutex
	statsMap = map[string]*serviceStats{}
	metrics  sync.Once
)

// statsFor returns the counters of service; pools resolve it once, so a
// pick is one atomic add.
func statsFor(service string) *serviceStats {
	metrics.Do(registerMetrics)
	statsMu.RLock()
	s := statsMap[service]
	statsMu.RUnlock()
	if s != nil {
		return s
	}
	statsMu.Lock()
	defer statsMu.Unlock()
	if s = statsMap[service]; s == nil {
		if len(statsMap) >= maxServices {
			service = "other"
			s = statsMap[service]
		}
		if s == nil {
			s = new(serviceStats)
			statsMap[service] = s
		}
	}
	return s
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
}

// Snapshot returns the pick counters of every service, sorted by service
// and class; rows that are all zero are left out.
func Snapshot() []Count {
	statsMu.RLock()
	out := make([]Count, 0, 2*len(statsMap))
	for svc, s := range statsMap {
		for c, class := range [2]string{propagation.ClassProduction, propagation.ClassLoadTest} {
			row := Count{Service: svc, Class: class,
				Lane: s.n[c][Lane].Load(), Fallback: s.n[c][Fallback].Load(),
				Trunk: s.n[c][TrunkHit].Load(), Miss: s.n[c][Miss].Load()}
			if row.Lane|row.Fallback|row.Trunk|row.Miss != 0 {
				out = append(out, row)
			}
		}
	}
	statsMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// Lookup returns the counters of one service and class ("production" or
// "loadtest"); zero when nothing was counted.
func Lookup(service, class string) Count {
	for _, c := range Snapshot() {
		if c.Service == service && c.Class == class {
			return c
		}
	}
	return Count{Service: service, Class: class}
}

// ScopeName is the OpenTelemetry instrumentation scope of envtag's metrics.
const ScopeName = "github.com/shadowlane/shadowlane/envtag"

// registerMetrics exposes the counters as the observable counter
// shadowlane.envtag.picks{service, class, result} on the global meter
// provider (the OTel global delegates to a provider installed later).
func registerMetrics() {
	m := otel.Meter(ScopeName)
	picks, err := m.Int64ObservableCounter("shadowlane.envtag.picks",
		metric.WithDescription("Instance picks by environment routing, per downstream service, traffic class and result (lane, fallback, trunk, miss)."),
		metric.WithUnit("{pick}"))
	if err != nil {
		otel.Handle(err)
		return
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, c := range Snapshot() {
			for r, n := range [...]int64{c.Lane, c.Fallback, c.Trunk, c.Miss} {
				o.ObserveInt64(picks, n, metric.WithAttributes(
					attribute.String("service", c.Service),
					attribute.String("class", c.Class),
					attribute.String("result", Result(r).String())))
			}
		}
		return nil
	}, picks)
	if err != nil {
		otel.Handle(err)
	}
	hc, err := m.Int64ObservableCounter("shadowlane.envtag.health",
		metric.WithDescription("Passive health of the HTTP transport per downstream service: connection failures, ejections, readmissions and retries (attribute event)."),
		metric.WithUnit("{event}"))
	if err != nil {
		otel.Handle(err)
		return
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		statsMu.RLock()
		rows := make([]HealthCount, 0, len(statsMap))
		for svc, s := range statsMap {
			rows = append(rows, s.health(svc))
		}
		statsMu.RUnlock()
		for _, h := range rows {
			for ev, n := range map[string]int64{"conn_failure": h.ConnFailures, "ejection": h.Ejections, "readmission": h.Readmissions, "retry": h.Retries} {
				if n != 0 {
					o.ObserveInt64(hc, n, metric.WithAttributes(attribute.String("service", h.Service), attribute.String("event", ev)))
				}
			}
		}
		return nil
	}, hc)
	if err != nil {
		otel.Handle(err)
	}
}
