package shop

import (
	"sync"

	"github.com/shadowlane/shadowlane/propagation"
)

// IDHeader carries the drill's request id through every hop.
const IDHeader = "X-Drill-Id"

// Recorder keeps the mark each hop saw for each request id.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]map[string]propagation.Mark // hop -> id -> mark
	hits map[string]int                         // counters: "payment:production", ...
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{seen: map[string]map[string]propagation.Mark{}, hits: map[string]int{}}
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
