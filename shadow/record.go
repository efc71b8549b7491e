package shadow

import (
	"sort"
	"sync"
	"sync/atomic"
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

var (
	seriesMu sync.RWMutex
	series   = map[seriesKey]*atomic.Int64{}
)

// Record counts one decision for store and target. Adapters pass a low
// cardinality target (a table, a topic, a Redis command name, a host), never
// a raw key or statement.
func Record(store, target string, d Decision) { RecordN(store, target, d, 1) }

// RecordN counts n decisions at once.
func RecordN(store, target string, d Decision, n int64) { series1(store, target, d).Add(n) }

// Counter is a handle on one (store, target, decision) series, for hot
// paths that count the same decision often (cache entries keep one):
// Inc is a single atomic add.
type Counter struct{ c *atomic.Int64 }

// CounterFor returns the handle of a series (creating it).
func CounterFor(store, target string, d Decision) Counter { return Counter{series1(store, target, d)} }

// Inc counts one decision.
func (c Counter) Inc() { c.c.Add(1) }

func series1(store, target string, d Decision) *atomic.Int64 {
	k := seriesKey{store, target, d}
	seriesMu.RLock()
	c := series[k]
	seriesMu.RUnlock()
	if c == nil {
		seriesMu.Lock()
		if c = series[k]; c == nil {
			if len(series) >= maxSeries {
				k.target = "other"
				c = series[k]
			}
			if c == nil {
				c = new(atomic.Int64)
				series[k] = c
			}
		}
		seriesMu.Unlock()
	}
	return c
}

// Count is one row of a [Snapshot].
type Count struct {
	Store    string `json:"store"`
	Target   string `json:"target"`
	Decision string `json:"decision"`
	N        int64  `json:"n"`
}

// Snapshot returns every decision counted so far, sorted by store, target
// and decision.
func Snapshot() []Count {
	seriesMu.RLock()
	out := make([]Count, 0, len(series))
	for k, c := range series {
		out = append(out, Count{k.store, k.target, k.decision.String(), c.Load()})
	}
	seriesMu.RUnlock()
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
func Total(store string, d Decision) int64 {
	var n int64
	seriesMu.RLock()
	for k, c := range series {
		if (store == "" || k.store == store) && k.decision == d {
			n += c.Load()
		}
	}
	seriesMu.RUnlock()
	return n
}
