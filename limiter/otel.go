package limiter

import (
	"context"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Totals are the lifetime counters of one resource and traffic class.
type Totals struct {
	Resource string        `json:"resource"`
	Class    string        `json:"class"`
	Pass     int64         `json:"pass"`
	Blocked  Blocks        `json:"blocked"`
	DryRun   int64         `json:"dryRun"`
	Error    int64         `json:"error"`
	Exited   int64         `json:"exited"`    // requests that exited (errors included)
	Latency  time.Duration `json:"latencyNs"` // sum of the latencies of the exited requests
	InFlight int64         `json:"inFlight"`
}

// Totals returns the lifetime counters of every resource and class that
// has seen traffic, sorted by resource then class. Counts racing with
// the turn of a second may land in the next second but are not lost.
func (l *Limiter) Totals() []Totals {
	var out []Totals
	for _, r := range l.resourcesSorted() {
		for ci := range r.stats {
			cs := &r.stats[ci]
			v := cs.w.totals()
			t := Totals{Resource: r.name, Class: classNames[ci+1], Pass: v[fPass], DryRun: v[fDryRun], Error: v[fErr],
				Exited: v[fExited], Latency: time.Duration(v[fLatency]), InFlight: cs.inflight.Load(),
				Blocked: Blocks{QPS: v[fBlockQPS], Concurrency: v[fBlockConcurrency], Breaker: v[fBlockBreaker],
					System: v[fBlockSystem], Queue: v[fBlockQueue], Param: v[fBlockParam]}}
			if t.Pass == 0 && t.Blocked.Total() == 0 && t.DryRun == 0 && t.InFlight == 0 {
				continue
			}
			out = append(out, t)
		}
	}
	return out
}

func (l *Limiter) resourcesSorted() []*Resource {
	l.mu.Lock()
	res := make([]*Resource, 0, len(l.resources)+1)
	for _, r := range l.resources {
		res = append(res, r)
	}
	if l.overflow != nil {
		res = append(res, l.overflow)
	}
	l.mu.Unlock()
	sort.Slice(res, func(i, j int) bool { return res[i].name < res[j].name })
	return res
}

// RegisterMetrics registers OpenTelemetry observable instruments that
// report l's counters per resource and class when the SDK collects
// (nothing is recorded on the request path):
//
//	shadowlane.limiter.passed     counter  {resource, class}
//	shadowlane.limiter.blocked    counter  {resource, class, reason}
//	shadowlane.limiter.dry_run    counter  {resource, class}  would have been blocked
//	shadowlane.limiter.errors     counter  {resource, class}
//	shadowlane.limiter.completed  counter  {resource, class}
//	shadowlane.limiter.latency    counter  {resource, class}  seconds, sum over completed requests
//	shadowlane.limiter.in_flight  up-down  {resource, class}
//
// Mean latency is latency / completed over any interval. Unregister the
// returned registration when done with l.
func (l *Limiter) RegisterMetrics(m metric.Meter) (metric.Registration, error) {
	const p = "shadowlane.limiter."
	passed, err1 := m.Int64ObservableCounter(p+"passed", metric.WithUnit("{request}"), metric.WithDescription("Requests admitted, by resource and traffic class."))
	blocked, err2 := m.Int64ObservableCounter(p+"blocked", metric.WithUnit("{request}"), metric.WithDescription("Requests refused, by resource, traffic class and reason."))
	dry, err3 := m.Int64ObservableCounter(p+"dry_run", metric.WithUnit("{request}"), metric.WithDescription("Requests a dry-run rule would have refused."))
	errs, err4 := m.Int64ObservableCounter(p+"errors", metric.WithUnit("{request}"), metric.WithDescription("Admitted requests that completed with an error."))
	done, err5 := m.Int64ObservableCounter(p+"completed", metric.WithUnit("{request}"), metric.WithDescription("Admitted requests that completed."))
	lat, err6 := m.Float64ObservableCounter(p+"latency", metric.WithUnit("s"), metric.WithDescription("Sum of the latencies of completed requests."))
	infl, err7 := m.Int64ObservableUpDownCounter(p+"in_flight", metric.WithUnit("{request}"), metric.WithDescription("Admitted requests not yet completed."))
	for _, err := range []error{err1, err2, err3, err4, err5, err6, err7} {
		if err != nil {
			return nil, err
		}
	}
	// Keep reported counters monotonic even if a count races with a
	// bucket being folded into the totals.
	var mu sync.Mutex
	last := map[[3]string]int64{}
	mono := func(k [3]string, v int64) int64 {
		if p := last[k]; p > v {
			return p
		}
		last[k] = v
		return v
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		mu.Lock()
		defer mu.Unlock()
		for _, t := range l.Totals() {
			rc := metric.WithAttributes(attribute.String("resource", t.Resource), attribute.String("class", t.Class))
			o.ObserveInt64(passed, mono([3]string{t.Resource, t.Class, "pass"}, t.Pass), rc)
			o.ObserveInt64(dry, mono([3]string{t.Resource, t.Class, "dry"}, t.DryRun), rc)
			o.ObserveInt64(errs, mono([3]string{t.Resource, t.Class, "err"}, t.Error), rc)
			o.ObserveInt64(done, mono([3]string{t.Resource, t.Class, "exit"}, t.Exited), rc)
			o.ObserveFloat64(lat, time.Duration(mono([3]string{t.Resource, t.Class, "lat"}, int64(t.Latency))).Seconds(), rc)
			o.ObserveInt64(infl, t.InFlight, rc)
			for _, b := range []struct {
				r Reason
				n int64
			}{{ReasonQPS, t.Blocked.QPS}, {ReasonConcurrency, t.Blocked.Concurrency}, {ReasonBreaker, t.Blocked.Breaker},
				{ReasonSystem, t.Blocked.System}, {ReasonQueue, t.Blocked.Queue}, {ReasonParam, t.Blocked.Param}} {
				if b.n == 0 {
					continue
				}
				o.ObserveInt64(blocked, mono([3]string{t.Resource, t.Class, b.r.String()}, b.n),
					metric.WithAttributes(attribute.String("resource", t.Resource), attribute.String("class", t.Class), attribute.String("reason", b.r.String())))
			}
		}
		return nil
	}, passed, blocked, dry, errs, done, lat, infl)
}
