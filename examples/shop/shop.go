package shop

import (
	"sync"

	"github.com/shadowlane/shadowlane/propagation"
)

// IDHeader carries the drill's request id through every hop.
const IDHeader = "X-Drill-Id"

// HopHeader names, on an answer other than 200, the hop that produced it:
// "gateway", "orders", "relay", "inventory" or "ledger". Each hop passes
// on the name a failed downstream answer carries, or names that
// downstream when the answer carries none (a refusal by shadowlane's
// middleware, say); the order service sends it to the gateway as the
// gRPC trailer hopTrailer.
const HopHeader = "X-Shop-Hop"

const hopTrailer = "x-shop-hop"

// Recorder keeps the mark each hop saw for each request id.
type Recorder struct {
	mu     sync.Mutex
	seen   map[string]map[string]propagation.Mark // hop -> id -> mark
	served map[string]map[string]string           // hop -> id -> env of the instance that served it
	hits   map[string]int                         // counters: "payment:production", ...
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{seen: map[string]map[string]propagation.Mark{}, served: map[string]map[string]string{}, hits: map[string]int{}}
}

// Saw records that hop handled request id under mark m.
func (r *Recorder) Saw(hop, id string, m propagation.Mark) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[hop] == nil {
		r.seen[hop] = map[string]propagation.Mark{}
	}
	r.seen[hop][id] = m
}

// Mark returns the mark hop saw for id, and whether hop saw id at all.
func (r *Recorder) Mark(hop, id string) (propagation.Mark, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.seen[hop][id]
	return m, ok
}

// Served records that the instance of hop labelled env ("" = trunk)
// served request id.
func (r *Recorder) Served(hop, id, env string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.served[hop] == nil {
		r.served[hop] = map[string]string{}
	}
	r.served[hop][id] = env
}

// ServedBy returns the environment of the instance of hop that served id,
// and whether any instance of hop served it.
func (r *Recorder) ServedBy(hop, id string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	env, ok := r.served[hop][id]
	return env, ok
}

// Hit counts an event.
func (r *Recorder) Hit(name string) {
	r.mu.Lock()
	r.hits[name]++
	r.mu.Unlock()
}

// Hits returns the count of an event.
func (r *Recorder) Hits(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[name]
}
