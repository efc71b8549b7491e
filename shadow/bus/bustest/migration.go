package bustest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Migration is the ledger of a broker-migration test: every message sent
// through a [migrate.Producer] (its [migrate.HeaderID] id, the phase in
// force when it was sent, its mark) and every handling of a copy by a
// consumer behind a [migrate.Reader] (the side it was read from, the phase
// in force then, the mark the handler saw). Copies are told apart by their
// id only, so a copy handled twice, on one side or on both, counts as a
// duplicate. The zero Migration is not ready: use [NewMigration]. It is
// safe for concurrent use.
type Migration struct {
	src migrate.Source

	mu      sync.Mutex
	sent    map[string]Sent
	order   []string // sent ids, in the order sent
	handled map[string][]Delivery
	unknown []string // handled ids that were never sent (or had no id)
}

// Sent is one message sent through a migration producer.
type Sent struct {
	Phase migrate.Phase
	Mark  propagation.Mark
}

// Delivery is one handling of a copy of a message.
type Delivery struct {
	Side  migrate.Side
	Phase migrate.Phase // the phase in force when the copy was handled
	Mark  propagation.Mark
}

// NewMigration returns an empty ledger reading the phase from src (the
// Source the test's Producer and Reader use).
func NewMigration(src migrate.Source) *Migration {
	return &Migration{src: src, sent: map[string]Sent{}, handled: map[string][]Delivery{}}
}

// Writes reports whether a message sent in phase p is written to side:
// the old system before and during the dual phases, the new one in the
// dual phases and after.
func Writes(p migrate.Phase, side migrate.Side) bool {
	switch side {
	case migrate.Old:
		return p != migrate.NewOnly
	case migrate.New:
		return p != migrate.Before
	}
	return false
}

// Reads reports whether a copy read from side in phase p may be handled
// (phase 1 handles the old system's copies only, phase 3 the new one's).
func Reads(p migrate.Phase, side migrate.Side) bool {
	switch p {
	case migrate.DualWrite:
		return side == migrate.Old
	case migrate.NewOnly:
		return side == migrate.New
	}
	return side == migrate.Old || side == migrate.New
}

// Send records m (its id, set here when empty, with the phase in force
// and the mark of ctx) and sends it to topic through p under ctx, failing
// t when the send fails. It records before sending, so a consumer may
// handle a copy before Send returns. It returns the id.
func (l *Migration) Send(t testing.TB, ctx context.Context, p *migrate.Producer, topic string, m *migrate.Message) string {
	t.Helper()
	if m.ID == "" {
		m.ID = migrate.NewID()
	}
	phase := l.src.MigrationPlan().Phase
	l.mu.Lock()
	_, dup := l.sent[m.ID]
	if !dup {
		l.sent[m.ID] = Sent{Phase: phase, Mark: propagation.FromContext(ctx)}
		l.order = append(l.order, m.ID)
	}
	l.mu.Unlock()
	if dup {
		t.Fatalf("message id %s sent twice", m.ID)
	}
	if err := p.Send(ctx, topic, m); err != nil {
		t.Fatalf("send %q in phase %s: %v", m.Value, phase, err)
	}
	return m.ID
}

// Handle records that a consumer of side handled the copy with id under
// the mark m, in the phase in force now. Call it from the handler behind
// the adapter's Migrating wrapper.
func (l *Migration) Handle(side migrate.Side, id string, m propagation.Mark) {
	phase := l.src.MigrationPlan().Phase
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.sent[id]; !ok {
		l.unknown = append(l.unknown, id)
		return
	}
	l.handled[id] = append(l.handled[id], Delivery{Side: side, Phase: phase, Mark: m})
}

// IDs returns the ids sent, in the order sent; with phases given, only
// those sent in one of them.
func (l *Migration) IDs(phases ...migrate.Phase) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range l.order {
		if len(phases) == 0 || slices.Contains(phases, l.sent[id].Phase) {
			out = append(out, id)
		}
	}
	return out
}

// Handled returns the handlings of id.
func (l *Migration) Handled(id string) []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.handled[id])
}

// Copies returns how many copies of the sent messages the two systems
// hold together (one per side each message's phase writes to): what
// consumers of both sides receive at least.
func (l *Migration) Copies() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.sent {
		for _, side := range []migrate.Side{migrate.Old, migrate.New} {
			if Writes(s.Phase, side) {
				n++
			}
		}
	}
	return n
}

// Placed checks what a client that knows nothing of shadowlane read from
// one topic (or queue) of side, where: got are the [migrate.HeaderID]
// values of its messages. It fails t unless got holds each message sent
// under run (the load-test run; "" for production) in a phase that writes
// side exactly once, and nothing else (no other run's message, no copy
// of a phase that does not write side, no message without an id).
func (l *Migration) Placed(t testing.TB, where string, side migrate.Side, run string, got []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
		s, ok := l.sent[id]
		switch {
		case !ok:
			t.Errorf("%s (%s system): a message with id %q that was never sent", where, side, id)
		case s.Mark.Run != run:
			t.Errorf("%s (%s system): %s sent under %v, want only run %q here", where, side, id, s.Mark, run)
		case !Writes(s.Phase, side):
			t.Errorf("%s (%s system): %s sent in phase %s, which does not write here", where, side, id, s.Phase)
		}
	}
	want := 0
	for _, id := range l.order {
		s := l.sent[id]
		if s.Mark.Run != run || !Writes(s.Phase, side) {
			continue
		}
		want++
		if seen[id] != 1 {
			t.Errorf("%s (%s system): %s (sent in phase %s under %v) is there %d times, want once", where, side, id, s.Phase, s.Mark, seen[id])
		}
	}
	if len(got) != want {
		t.Errorf("%s (%s system) holds %d messages, want %d", where, side, len(got), want)
	}
}

// WaitRead waits (60 s at most) until rd decided on every copy the two
// systems hold ([Migration.Copies]): handled, skipped or dropped as a
// duplicate.
func (l *Migration) WaitRead(t testing.TB, rd *migrate.Reader) {
	t.Helper()
	want := uint64(l.Copies())
	var st migrate.ReaderStats
	Wait(t, 60*time.Second, func() bool {
		st = rd.Stats()
		return st.Handled+st.Skipped+st.Duplicates >= want
	}, func() string {
		return "the reader decided on " + strconv.FormatUint(st.Handled+st.Skipped+st.Duplicates, 10) + " of " + strconv.FormatUint(want, 10) + " copies"
	})
}

// Check reconciles the ledger: it fails t for every sent message never
// handled (lost), handled under another mark than it was sent with,
// handled from a side its phase did not write, or handled from a side the
// phase in force did not read, and for every handled id that was never
// sent. With rd given, it also fails t unless rd handled exactly one copy
// per sent id, found none without an id, skipped the new system's copy of
// every message sent in phase 1 and dropped every other copy as a
// duplicate ([Migration.Copies] in all): counts that hold when each copy
// is read in the phase it was sent in (call [Migration.WaitRead] before
// moving the phase on). It returns the duplicates (handlings beyond the
// first of an id) and how many ids each side handled first.
func (l *Migration) Check(t testing.TB, rd *migrate.Reader) (dups int, first map[migrate.Side]int) {
	t.Helper()
	copies := uint64(l.Copies())
	l.mu.Lock()
	defer l.mu.Unlock()
	first = map[migrate.Side]int{}
	for _, id := range l.unknown {
		t.Errorf("handled a copy with id %q that was never sent", id)
	}
	var skips uint64
	for _, id := range l.order {
		s, ds := l.sent[id], l.handled[id]
		if s.Phase == migrate.DualWrite {
			skips++
		}
		if len(ds) == 0 {
			t.Errorf("%s (sent in phase %s under %v): lost (never handled)", id, s.Phase, s.Mark)
			continue
		}
		first[ds[0].Side]++
		dups += len(ds) - 1
		if len(ds) > 1 {
			t.Logf("duplicate %s: %+v", id, ds)
		}
		for _, d := range ds {
			if d.Mark.Run != s.Mark.Run || d.Mark.Env != s.Mark.Env {
				t.Errorf("%s: sent under %v, handled under %v", id, s.Mark, d.Mark)
			}
			if !Writes(s.Phase, d.Side) {
				t.Errorf("%s: sent in phase %s, handled from the %s system (not written)", id, s.Phase, d.Side)
			}
			if !Reads(d.Phase, d.Side) {
				t.Errorf("%s: handled from the %s system in phase %s (not read)", id, d.Side, d.Phase)
			}
		}
	}
	if rd != nil {
		n := uint64(len(l.order))
		if st := rd.Stats(); st.Handled != n || st.NoID != 0 || st.Skipped != skips || st.Duplicates != copies-n-skips {
			t.Errorf("reader %+v: want %d handled, none without an id, %d skipped, %d duplicates (%d copies of %d messages)",
				st, n, skips, copies-n-skips, copies, n)
		}
	}
	return dups, first
}

// Phases is a [migrate.Source] whose phase a test moves on; its topic map
// is fixed. It is safe for concurrent use.
type Phases struct {
	topics map[string]string
	phase  atomic.Uint32
}

// NewPhases returns a source in phase p with the topic map topics.
func NewPhases(p migrate.Phase, topics map[string]string) *Phases {
	s := &Phases{topics: topics}
	s.phase.Store(uint32(p))
	return s
}

// Set moves the source to phase p.
func (s *Phases) Set(p migrate.Phase) { s.phase.Store(uint32(p)) }

// MigrationPlan returns the plan in force.
func (s *Phases) MigrationPlan() migrate.Plan {
	return migrate.Plan{Phase: migrate.Phase(s.phase.Load()), Topics: s.topics}
}

// Drive runs the producing side of a migration test through phases: for
// each, it moves ph there, sends n messages under each of marks to topic
// through p (recorded in l, which must read ph), and waits until rd
// decided on every copy so far ([Migration.WaitRead]), so each copy is
// read in the phase it was sent in. A message's value is
// "phase/run/env/i" and its key "lanes-<i>".
func (l *Migration) Drive(t testing.TB, ph *Phases, p *migrate.Producer, rd *migrate.Reader, topic string, n int, marks []propagation.Mark, phases ...migrate.Phase) {
	t.Helper()
	for _, phase := range phases {
		ph.Set(phase)
		for i := range n {
			for _, m := range marks {
				v := phase.String() + "/" + m.Run + "/" + m.Env + "/" + strconv.Itoa(i)
				l.Send(t, propagation.With(context.Background(), m), p, topic, &migrate.Message{Key: []byte("lanes-" + strconv.Itoa(i)), Value: []byte(v)})
			}
		}
		l.WaitRead(t, rd)
	}
}
