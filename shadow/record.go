package shadow

import (
	"sort"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/internal/capmap"
	"github.com/shadowlane/shadowlane/internal/installed"
)

// Decision is what an adapter did with one operation.
type Decision uint8

const (
	// Redirect: load-test work sent to a shadow target.
	Redirect Decision = iota
	// Block: load-test work refused (fail closed).
	Block
	// Guard: production work refused because it touched a shadow target.
	Guard
	// ReadThrough: load-test work allowed to read a production target on the
	// read-through list.
	ReadThrough
	// Mock: load-test work answered by a configured mock.
	Mock
	// Filter: shadow names removed from the reply of a production
	// operation (Redis KEYS, SCAN, PUBSUB CHANNELS); counted per name.
	Filter
	numDecisions
)

func (d Decision) String() string {
	switch d {
	case Redirect:
		return "redirect"
	case Block:
		return "block"
	case Guard:
		return "guard"
	case ReadThrough:
		return "read_through"
	case Mock:
		return "mock"
	case Filter:
		return "filter"
	}
	return "unknown"
}

// maxSeries bounds the number of distinct (store, target) pairs counted;
// further targets are counted under target "other".
const maxSeries = 2048

type seriesKey struct {
	store, target string
	decision      Decision
}

// RunFunc receives every decision made for the work of a load-test run:
// the run, the store, the low-cardinality target, the shadow target the
// work went to when the adapter knows it ("" otherwise), the decision and
// how many. A shadowlane Runtime uses it for its per-run evidence.
type RunFunc func(run, store, target, to string, d Decision, n int64)

// Series is one set of decision counters: the decisions of the store
// adapters bound to one shadowlane Runtime (each Runtime owns one; see
// shadowlane.Runtime.Decisions). Counting is an atomic add once a series
// exists. A nil *Series counts nothing. It is safe for concurrent use.
type Series struct {
	m     capmap.Map[seriesKey, atomic.Int64]
	onRun RunFunc
	onErr RunErrorFunc
}

// RunErrorFunc receives the errors of a load-test run's work that store
// adapters count with [Series.RunError]: the run, a short low-cardinality
// reason ("sql timeout", "redis WRONGTYPE") and how many.
type RunErrorFunc func(run, reason string, n int64)

// OnRunError sets the function that receives the errors counted with
// [Series.RunError] and returns s. Call it before s is shared (a shadowlane
// Runtime sets it when it creates its series).
func (s *Series) OnRunError(f RunErrorFunc) *Series {
	s.onErr = f
	return s
}

// RunError counts one error of the work of a load-test run in the per-run
// evidence (nothing for production work, run ""). reason is short and
// low-cardinality: a store and a class ("sql timeout"), never a raw
// message. Shadow decisions (blocks, guards) are not errors: they are
// counted as decisions.
func (s *Series) RunError(run, reason string) {
	if s != nil && run != "" && s.onErr != nil {
		s.onErr(run, reason, 1)
	}
}

// NewSeries returns an empty series; onRun, when not nil, also receives
// every decision recorded with a run.
func NewSeries(onRun RunFunc) *Series {
	return &Series{onRun: onRun}
}

// Record counts one decision for store and target. Adapters pass a low
// cardinality target (a table, a topic, a Redis command name, a host), never
// a raw key or statement; run is the run of the work ("" for production
// work).
func (s *Series) Record(run, store, target string, d Decision) { s.Add(run, store, target, "", d, 1) }

// Add counts n decisions at once; to is the shadow target the work went
// to, when known ("" otherwise), for the per-run evidence.
func (s *Series) Add(run, store, target, to string, d Decision, n int64) {
	if s == nil {
		return
	}
	s.series(store, target, d).Add(n)
	if run != "" && s.onRun != nil {
		s.onRun(run, store, target, to, d, n)
	}
}

// AddRun counts decisions of a run in the per-run evidence only: for
// callers that counted them already through a [Counter].
func (s *Series) AddRun(run, store, target, to string, d Decision, n int64) {
	if s != nil && run != "" && s.onRun != nil {
		s.onRun(run, store, target, to, d, n)
	}
}

// Counter is a handle on one (store, target, decision) series, for hot
// paths that count the same decision often (cache entries keep one):
// Inc is a single atomic add.
type Counter struct{ c *atomic.Int64 }

// Counter returns the handle of a series (creating it).
func (s *Series) Counter(store, target string, d Decision) Counter {
	if s == nil {
		return Counter{}
	}
	return Counter{s.series(store, target, d)}
}

// Inc counts one decision.
func (c Counter) Inc() {
	if c.c != nil {
		c.c.Add(1)
	}
}

func (s *Series) series(store, target string, d Decision) *atomic.Int64 {
	return s.m.Get(seriesKey{store, target, d}, maxSeries, otherTarget)
}

func otherTarget(k seriesKey) seriesKey {
	k.target = "other"
	return k
}

// Count is one row of a [Series.Snapshot].
type Count struct {
	Store    string `json:"store"`
	Target   string `json:"target"`
	Decision string `json:"decision"`
	N        int64  `json:"n"`
}

// Snapshot returns every decision counted so far, sorted by store, target
// and decision.
func (s *Series) Snapshot() []Count {
	if s == nil {
		return []Count{}
	}
	out := make([]Count, 0, s.m.Len())
	for k, c := range s.m.All() {
		out = append(out, Count{k.store, k.target, k.decision.String(), c.Load()})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Store != b.Store {
			return a.Store < b.Store
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Decision < b.Decision
	})
	return out
}

// Total returns the sum of the counts of store and decision over all targets
// (store "" matches every store).
func (s *Series) Total(store string, d Decision) int64 {
	if s == nil {
		return 0
	}
	var n int64
	for k, c := range s.m.All() {
		if (store == "" || k.store == store) && k.decision == d {
			n += c.Load()
		}
	}
	return n
}

// ---- the default series: the default shadowlane Runtime's ----

// defaultSeries returns the default Runtime's series. It is the only
// package-level state of this package: the root package installs it once,
// at init, as a function that looks up its default Runtime, so the
// package-level helpers below delegate to that Runtime and never hold
// counters of their own.
var defaultSeries installed.Func[Series]

// SetDefault installs the function that returns the default series (the
// default shadowlane Runtime's). The shadowlane package calls it at init;
// applications have no reason to.
func SetDefault(f func() *Series) { defaultSeries.Set(f) }

// Default returns the default Runtime's series (nil when the shadowlane
// package is not linked in: nothing is counted then).
func Default() *Series { return defaultSeries.Get() }

// Record counts one production-side decision in the default Runtime's
// series (see [Series.Record]). Adapters bound to a Runtime count in its
// series instead.
func Record(store, target string, d Decision) { Default().Add("", store, target, "", d, 1) }

// RecordN counts n decisions at once in the default Runtime's series.
func RecordN(store, target string, d Decision, n int64) { Default().Add("", store, target, "", d, n) }

// CounterFor returns the handle of a series of the default Runtime.
func CounterFor(store, target string, d Decision) Counter { return Default().Counter(store, target, d) }

// Snapshot returns the default Runtime's decision counts (see
// [Series.Snapshot]).
func Snapshot() []Count { return Default().Snapshot() }

// Total returns a total of the default Runtime's series (see
// [Series.Total]).
func Total(store string, d Decision) int64 { return Default().Total(store, d) }
