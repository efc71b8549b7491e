package shadowlane

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/capmap"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

const maxLabelValues = 256 // distinct env tags / reasons / hosts counted before "other"

// labelCounters count by label; past maxLabelValues distinct labels, new
// ones count under "other".
type labelCounters struct {
	m capmap.Map[string, atomic.Int64]
}

func otherLabel(string) string { return "other" }

func (l *labelCounters) add(label string, n int64) {
	l.m.Get(label, maxLabelValues, otherLabel).Add(n)
}

func (l *labelCounters) snapshot() map[string]int64 {
	out := make(map[string]int64, l.m.Len())
	for k, v := range l.m.All() {
		out[k] = v.Load()
	}
	return out
}

// counters are plain atomics on the hot path, read by OTel observable
// instruments at collection time, so counting costs no allocation.
type counters struct {
	production  atomic.Int64     // unmarked requests (no mark at all)
	requests    [2]labelCounters // by env tag; [0] production, [1] load-test
	drops       labelCounters
	tokens      labelCounters
	outbound    labelCounters
	killRefused atomic.Int64

	untrustedRefused atomic.Int64 // refused at an edge: load-test indicator without a valid token

	lostMarks labelCounters // lost-mark guard catches, by exit (lostmark.go)
}

func (c *counters) request(m propagation.Mark) {
	if m.Run != "" {
		c.requests[1].add(m.Env, 1)
	} else {
		c.requests[0].add(m.Env, 1)
	}
}
func (c *counters) dropped(reason string)       { c.drops.add(reason, 1) }
func (c *counters) tokenRejected(reason string) { c.tokens.add(reason, 1) }

// Stats is a snapshot of a runtime's counters.
type Stats struct {
	// Requests by "class|env" ("production|" counts unmarked and env-only
	// production requests of trunk).
	Requests       map[string]int64 `json:"requests"`
	MarksDropped   map[string]int64 `json:"marksDropped"`
	TokensRejected map[string]int64 `json:"tokensRejected"`
	// Outbound load-test calls by "decision|host".
	Outbound          map[string]int64 `json:"outbound"`
	KillSwitchRefused int64            `json:"killSwitchRefused"`
	LoadTestEnabled   bool             `json:"loadTestEnabled"`
	LoadTestReason    string           `json:"loadTestReason,omitempty"`
	// LoadTestBy says who set the kill switch last: "config", "api",
	// "admin" or "default". An "off" by api or admin holds over reloads.
	LoadTestBy string         `json:"loadTestBy,omitempty"`
	Shadow     []shadow.Count `json:"shadow"`
	LastReload *ReloadStatus  `json:"lastReload,omitempty"`
	// Runs are the load-test runs whose evidence is kept (the last
	// evidence.runs), the most recently seen first: GET
	// /shadowlane/status?run=R serves each.
	Runs []string `json:"runs"`

	// UntrustedRefused counts requests refused (403 / PermissionDenied)
	// because they carried a load-test indicator that failed verification.
	UntrustedRefused int64 `json:"untrustedRefused"`
	// Warnings are problems that do not stop the service, such as edge
	// trust without token keys (every load-test request refused).
	Warnings []string `json:"warnings,omitempty"`
	// LostMarks counts, per exit ("redis", "sqlite", "kafka", "http"...),
	// unmarked operations the lost-mark guard found carrying load-test data
	// (testData:), refused or alerted.
	LostMarks map[string]int64 `json:"lostMarks,omitempty"`
	// Routing is the runtime's routing pick counters per downstream
	// service and traffic class (RoutingStats().Snapshot()): lane,
	// fallback, trunk and miss picks, same-zone and spilled picks, and the
	// pinned picks and refusals of load-test runs pinned to a zone.
	Routing []envtag.Count `json:"routing,omitempty"`
	// Pins are the routing.pin entries in force (run or "*" -> zone).
	Pins map[string]string `json:"pins,omitempty"`
}

// ReloadStatus is the outcome of the last config reload.
type ReloadStatus struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// Stats returns the counters so far.
func (rt *Runtime) Stats() Stats {
	req := map[string]int64{}
	for i, class := range []string{propagation.ClassProduction, propagation.ClassLoadTest} {
		for env, n := range rt.stats.requests[i].snapshot() {
			req[class+"|"+env] += n
		}
	}
	req["production|"] += rt.stats.production.Load()
	en, reason := rt.LoadTestEnabled()
	s := Stats{
		Requests: req, MarksDropped: rt.stats.drops.snapshot(), TokensRejected: rt.stats.tokens.snapshot(),
		Outbound: rt.stats.outbound.snapshot(), KillSwitchRefused: rt.stats.killRefused.Load(),
		LoadTestEnabled: en, LoadTestReason: reason, Shadow: rt.decisions.Snapshot(), Runs: rt.runs.list(),
		UntrustedRefused: rt.stats.untrustedRefused.Load(), Warnings: rt.st.Load().warnings,
	}
	if r := rt.rstats.Snapshot(); len(r) > 0 {
		s.Routing = r
	}
	s.Pins = rt.RoutingPolicy().Pins()
	if lm := rt.stats.lostMarks.snapshot(); len(lm) > 0 {
		s.LostMarks = lm
	}
	if k := rt.kill.Load(); k != nil {
		s.LoadTestBy = k.source
	}
	if r := rt.reloadErr.Load(); r != nil {
		s.LastReload = &ReloadStatus{At: r.at}
		if r.err != nil {
			s.LastReload.Error = r.err.Error()
		}
	}
	return s
}

func splitLabel(s string) (string, string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func (rt *Runtime) registerMetrics() error {
	m := rt.meterOrGlobal().Meter("github.com/shadowlane/shadowlane")
	var err error
	counter := func(name, desc string) metric.Int64ObservableCounter {
		c, e := m.Int64ObservableCounter(name, metric.WithDescription(desc))
		if err == nil {
			err = e
		}
		return c
	}
	reqs := counter("shadowlane.requests", "Requests admitted by shadowlane entries, by traffic class and env tag.")
	drops := counter("shadowlane.marks.dropped", "Malformed mark values dropped at entries, by reason.")
	toks := counter("shadowlane.tokens.rejected", "Load-test marks refused at edges for want of a valid token, by reason.")
	out := counter("shadowlane.outbound", "Load-test calls to hosts, by decision (allow, mock, block) and host.")
	kill := counter("shadowlane.killswitch.refused", "Marked requests refused while load-test traffic was switched off.")
	sh := counter("shadowlane.shadow.decisions", "Shadow decisions of store adapters, by store, target and decision.")
	lost := counter("shadowlane.lostmark", "Unmarked operations carrying load-test data (testData), caught at exits, by exit.")
	runReqs := counter("shadowlane.run.requests", "Marked requests of the last evidence.runs load-test runs, by run, entry, route and outcome (admitted, refused).")
	runDecs := counter("shadowlane.run.decisions", "Shadow decisions of the last evidence.runs load-test runs, by run, store, target and decision.")
	runErrs := counter("shadowlane.run.errors", "Errors of the last evidence.runs load-test runs, by run and reason.")
	if err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := rt.Stats()
		for k, v := range s.Requests {
			class, env := splitLabel(k)
			o.ObserveInt64(reqs, v, metric.WithAttributes(attribute.String("class", class), attribute.String("env", env)))
		}
		for k, v := range s.MarksDropped {
			o.ObserveInt64(drops, v, metric.WithAttributes(attribute.String("reason", k)))
		}
		for k, v := range s.TokensRejected {
			o.ObserveInt64(toks, v, metric.WithAttributes(attribute.String("reason", k)))
		}
		for k, v := range s.Outbound {
			d, host := splitLabel(k)
			o.ObserveInt64(out, v, metric.WithAttributes(attribute.String("decision", d), attribute.String("host", host)))
		}
		o.ObserveInt64(kill, s.KillSwitchRefused)
		for _, c := range s.Shadow {
			o.ObserveInt64(sh, c.N, metric.WithAttributes(attribute.String("store", c.Store),
				attribute.String("target", c.Target), attribute.String("decision", c.Decision)))
		}
		for k, v := range s.LostMarks {
			o.ObserveInt64(lost, v, metric.WithAttributes(attribute.String("exit", k)))
		}
		rt.observeRuns(o, runReqs, runDecs, runErrs)
		return nil
	}, reqs, drops, toks, out, kill, sh, lost, runReqs, runDecs, runErrs)
	if err != nil {
		return err
	}
	ereg, err := rt.rstats.RegisterMetrics(rt.meterOrGlobal().Meter(envtag.ScopeName))
	if err != nil {
		_ = reg.Unregister()
		return err
	}
	rt.metricMu.Lock()
	rt.reg = reg
	rt.ereg = ereg
	rt.metricMu.Unlock()
	return nil
}

// observeRuns reports the evidence of the runs kept: the run attribute
// takes at most evidence.runs values.
func (rt *Runtime) observeRuns(o metric.Observer, reqs, decs, errs metric.Int64Observable) {
	for _, r := range rt.runs.records() {
		var s RunStatus
		r.fill(&s)
		run := attribute.String("run", r.run)
		for _, e := range s.Entries {
			for outcome, n := range map[string]int64{"admitted": e.Marked, "refused": e.Refused} {
				if n != 0 {
					o.ObserveInt64(reqs, n, metric.WithAttributes(run, attribute.String("entry", e.Entry),
						attribute.String("route", e.Route), attribute.String("outcome", outcome)))
				}
			}
		}
		for _, d := range s.Decisions {
			o.ObserveInt64(decs, d.N, metric.WithAttributes(run, attribute.String("store", d.Store),
				attribute.String("target", d.Target), attribute.String("decision", d.Decision)))
		}
		for _, e := range s.Errors {
			o.ObserveInt64(errs, e.N, metric.WithAttributes(run, attribute.String("reason", e.Reason)))
		}
	}
}

// rateLog logs at most one record per key per interval, and says how many
// were suppressed in between, so a flood of forged marks cannot flood logs.
type rateLog struct {
	l     *slog.Logger
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	seen  map[string]*rateEntry
}

type rateEntry struct {
	last       time.Time
	suppressed int
}

func newRateLog(l *slog.Logger, every time.Duration, now func() time.Time) *rateLog {
	return &rateLog{l: l, every: every, now: now, seen: map[string]*rateEntry{}}
}

func (r *rateLog) warn(key, msg string, args ...any) {
	now := r.now()
	r.mu.Lock()
	e := r.seen[key]
	if e == nil {
		if len(r.seen) > 1024 {
			clear(r.seen)
		}
		e = &rateEntry{}
		r.seen[key] = e
	} else if now.Sub(e.last) < r.every {
		e.suppressed++
		r.mu.Unlock()
		return
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	r.l.Warn(msg, args...)
}
