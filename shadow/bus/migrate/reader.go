package migrate

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/internal/enumname"
)

// DefaultWindow is the number of handled message ids a [Reader]
// remembers when no window is given.
const DefaultWindow = 1 << 16

// Outcome is what a [Reader] decided for one received copy.
type Outcome uint8

const (
	// Handle: run the handler; then call [Reader.Done].
	Handle Outcome = iota + 1
	// Skip: this side is not read in this phase (its twin on the other
	// side is handled); acknowledge without handling.
	Skip
	// Duplicate: a copy with this id was handled (or is being handled);
	// acknowledge without handling.
	Duplicate
)

// String returns "handle", "skip" or "duplicate".
func (o Outcome) String() string {
	return enumname.String([]string{Handle: "handle", Skip: "skip", Duplicate: "duplicate"}, o, "outcome")
}

// ReaderStats counts a Reader's decisions.
type ReaderStats struct {
	Handled    uint64 // copies handled (with or without an id)
	NoID       uint64 // of Handled: copies without an id (never de-duplicated)
	Skipped    uint64 // copies of the side the phase does not read
	Duplicates uint64 // copies dropped because their id was handled
	Released   uint64 // handler failures: the id was forgotten for a redelivery
	Evicted    uint64 // ids dropped from the window to make room
}

// Reader decides, for each copy a consumer receives from either system,
// whether to handle it, from the phase in force and the ids it has seen.
// One Reader serves every consumer of the migrating topics in a process
// (old and new side, production and shadow topics alike); it is safe for
// concurrent use.
//
// Memory is bounded: the Reader remembers the ids of the last Window
// handled copies (first in, first out), plus the ids being handled at the
// moment. Its limits:
//   - a copy whose twin was handled more than Window handled ids earlier is
//     handled again (a consumer lagging the other side by more than Window
//     messages in phase 2);
//   - the ids live in this process: two processes reading the two sides
//     (or two partitions of one side holding both copies) do not see each
//     other's ids; run the migrating consumers of a topic in one process
//     per key range, or use an idempotent handler;
//   - messages without an id (not written by a [Producer]) are handled
//     wherever they are read: they have no twin;
//   - a copy read from the old system after phase 3 began is skipped, so
//     phase 2 must last until the old system's consumers have caught up
//     with what was written in phase 1 (a phase-1 copy of the new system
//     was skipped too).
type Reader struct {
	src    Source
	window int

	mu      sync.Mutex
	done    map[string]struct{} // handled ids in the window
	ring    []string            // done's ids in the order handled
	next    int                 // ring slot to fill next
	running map[string]struct{} // ids being handled

	handled, noID, skipped, dups, released, evicted atomic.Uint64
}

// NewReader returns a Reader of src's phases remembering window handled
// ids (<= 0: [DefaultWindow]).
func NewReader(src Source, window int) *Reader {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Reader{src: src, window: window, done: make(map[string]struct{}, window),
		ring: make([]string, 0, min(window, 1024)), running: map[string]struct{}{}}
}

// Window returns the number of handled ids the Reader remembers.
func (r *Reader) Window() int { return r.window }

// Begin decides what to do with a copy of message id read from side. On
// [Handle] the caller runs its handler and then calls [Reader.Done] with
// the same id and whether the handler succeeded (an id whose handler
// failed is forgotten, so its redelivery, or its twin, is handled).
func (r *Reader) Begin(side Side, id string) Outcome {
	phase := r.src.MigrationPlan().Phase
	if id == "" {
		r.handled.Add(1)
		r.noID.Add(1)
		return Handle
	}
	switch {
	case phase == DualWrite && side == New, phase == NewOnly && side == Old:
		r.skipped.Add(1)
		return Skip
	}
	id = key(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.done[id]; ok {
		r.dups.Add(1)
		return Duplicate
	}
	if _, ok := r.running[id]; ok {
		r.dups.Add(1)
		return Duplicate
	}
	r.running[id] = struct{}{}
	return Handle
}

// Done ends the handling of id that [Reader.Begin] allowed: ok says the
// handler succeeded (the id is remembered) or failed (the id is
// forgotten).
func (r *Reader) Done(id string, ok bool) {
	if id == "" {
		return
	}
	id = key(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, was := r.running[id]; !was {
		return
	}
	delete(r.running, id)
	if !ok {
		r.released.Add(1)
		return
	}
	r.handled.Add(1)
	if len(r.ring) < r.window {
		r.ring = append(r.ring, id)
	} else {
		delete(r.done, r.ring[r.next])
		r.evicted.Add(1)
		r.ring[r.next] = id
		r.next = (r.next + 1) % r.window
	}
	r.done[id] = struct{}{}
}

// Handle runs h for a copy of id read from side when the Reader says
// [Handle], and reports the outcome and h's error.
func (r *Reader) Handle(side Side, id string, h func() error) (Outcome, error) {
	o := r.Begin(side, id)
	if o != Handle {
		return o, nil
	}
	err := h()
	r.Done(id, err == nil)
	return o, err
}

// Stats returns the Reader's counts.
func (r *Reader) Stats() ReaderStats {
	return ReaderStats{Handled: r.handled.Load(), NoID: r.noID.Load(), Skipped: r.skipped.Load(),
		Duplicates: r.dups.Load(), Released: r.released.Load(), Evicted: r.evicted.Load()}
}

func key(id string) string {
	if len(id) <= MaxIDLen {
		return id
	}
	s := sha256.Sum256([]byte(id))
	return string(s[:])
}
