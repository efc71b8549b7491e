package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/shadowlane/shadowlane/internal/enumname"
)

// HeaderID is the header (or message property) the message id travels
// under on every bus, written exactly like this; readers compare names
// ignoring ASCII case where the bus allows any case.
const HeaderID = "X-Shadowlane-Msg-Id"

// MaxIDLen is the longest message id kept as it is; a longer id is kept
// as its SHA-256 digest, so the de-duplicator's memory stays bounded.
const MaxIDLen = 128

// Phase is where a migration stands. The zero Phase is "not migrating".
type Phase uint8

const (
	// Before: not migrating (no migration section, or phase 0). Produce
	// writes the old system only; consumers handle what they read, on
	// either side, without de-duplication.
	Before Phase = 0
	// DualWrite (phase 1): produce writes the old system first, then the
	// new one, with the same message id. Consume: copies read from the old
	// system are handled (and their ids remembered); copies read from the
	// new system are acknowledged without handling (their old twins are
	// handled).
	DualWrite Phase = 1
	// DualRead (phase 2): produce still writes old, then new. Consume:
	// copies from both systems are handled, the first copy of an id wins
	// and every later copy of it is dropped (acknowledged, not handled).
	DualRead Phase = 2
	// NewOnly (phase 3): produce writes the new system only. Consume:
	// copies read from the new system are handled unless their id was
	// already handled; copies of dual-written messages still read from
	// the old system are acknowledged without handling (each has a twin on
	// the new system).
	NewOnly Phase = 3
)

// String returns "before", "dual-write", "dual-read" or "new-only".
func (p Phase) String() string {
	return enumname.String([]string{Before: "before", DualWrite: "dual-write", DualRead: "dual-read", NewOnly: "new-only"}, p, "phase")
}

// Valid reports whether p is one of the four phases.
func (p Phase) Valid() bool { return p <= NewOnly }

// Side is one of the two systems of a migration.
type Side uint8

const (
	// Old is the system being left.
	Old Side = 1
	// New is the system being moved to.
	New Side = 2
)

// String returns "old" or "new".
func (s Side) String() string {
	return enumname.String([]string{Old: "old", New: "new"}, s, "side")
}

// Plan is the migration in force: its phase and its topic map. A Plan is
// a value; a reload replaces it as a whole.
type Plan struct {
	// Phase is the phase in force.
	Phase Phase
	// Topics maps an old system's production name (topic, subject, queue
	// or exchange routing name) to the new system's production name. Shadow
	// names are never listed: each side's adapter derives its own shadow
	// name from the production name by its own produce rule.
	Topics map[string]string
}

// Target returns the new system's name for the old system's name old.
func (p Plan) Target(old string) (string, bool) {
	n, ok := p.Topics[old]
	return n, ok
}

// Validate checks p: a known phase, non-empty names, and no two old names
// mapped to one new name (dual read could not tell their messages apart by
// topic, and the map could not be read backwards).
func (p Plan) Validate() error {
	if !p.Phase.Valid() {
		return fmt.Errorf("%w: phase %d: want 0, 1, 2 or 3", ErrConfig, p.Phase)
	}
	seen := make(map[string]string, len(p.Topics))
	for o, n := range p.Topics {
		if o == "" || n == "" {
			return fmt.Errorf("%w: topic map %q -> %q: names must not be empty", ErrConfig, o, n)
		}
		if prev, dup := seen[n]; dup {
			return fmt.Errorf("%w: topics %q and %q both map to %q", ErrConfig, prev, o, n)
		}
		seen[n] = o
	}
	return nil
}

// Source gives the plan in force; it is read once per produce and per
// received message, so a reload applies without restarts.
// *shadowlane.Runtime is a Source (its "migration:" config section).
type Source interface {
	MigrationPlan() Plan
}

// SourceFunc adapts a function to [Source].
type SourceFunc func() Plan

// MigrationPlan calls f.
func (f SourceFunc) MigrationPlan() Plan { return f() }

// Fixed is a Source that always gives the same plan (tests, tools).
type Fixed Plan

// MigrationPlan returns the plan.
func (f Fixed) MigrationPlan() Plan { return Plan(f) }

// Errors of this package.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("migrate: invalid configuration")
	// ErrUnmapped: a topic that the map does not name was produced while
	// migrating (phases 1 to 3). It is not sent anywhere.
	ErrUnmapped = errors.New("migrate: topic not in the migration map")
)

// Message is one message to send: the id ties its copies on the two
// systems together. The mark is not here: it rides the context, and each
// side's adapter applies its own produce rule (shadow target, mark
// headers) to it.
type Message struct {
	// ID is the message id, sent under [HeaderID]. [Producer.Send] fills it
	// when empty, so a retry of the same Message reuses the id.
	ID string
	// Key is the partition or routing key (buses without one ignore it).
	Key []byte
	// Value is the payload.
	Value []byte
	// Headers are application headers; mark headers and [HeaderID] given
	// here are ignored (the adapter writes the mark, the sender the id).
	Headers map[string]string
}

// Sender sends one message to a production name on one system. Adapters
// provide one over their own producer wrapper, so the produce rule of that
// adapter (shadow target for a marked context, refusal where there is no
// twin) always applies: a Sender never writes a shadow name itself.
type Sender interface {
	Send(ctx context.Context, topic string, m Message) error
}

// SenderFunc adapts a function to [Sender].
type SenderFunc func(ctx context.Context, topic string, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, topic string, m Message) error { return f(ctx, topic, m) }

// WriteError is a send that did not complete: Side is where it failed,
// Wrote says which sides already have the message (under its id). Sending
// the same *Message again is safe: a copy sent twice has one id, and the
// reader handles an id once (within its window).
type WriteError struct {
	Topic string
	Side  Side
	Wrote []Side
	Err   error
}

func (e *WriteError) Error() string {
	s := fmt.Sprintf("migrate: %q on the %s system: %v", e.Topic, e.Side, e.Err)
	if len(e.Wrote) > 0 {
		s += fmt.Sprintf(" (already written to the %s system; send it again with the same id)", e.Wrote[0])
	}
	return s
}

// Unwrap returns the sender's error.
func (e *WriteError) Unwrap() error { return e.Err }

// Producer writes messages through two Senders as the plan's phase says
// (see [Phase]). It is safe for concurrent use.
type Producer struct {
	src      Source
	old, new Sender
}

// NewProducer returns a producer writing to old and new as src's plan
// says.
func NewProducer(src Source, old, new Sender) (*Producer, error) {
	if src == nil || old == nil || new == nil {
		return nil, fmt.Errorf("%w: source and both senders are required", ErrConfig)
	}
	return &Producer{src: src, old: old, new: new}, nil
}

// Send writes m, addressed by the old system's name topic, under the mark
// of ctx: before the migration to old only; in phases 1 and 2 to old,
// then (only if that succeeded) to the new system's mapped name; in phase
// 3 to the new name only. m.ID is set when empty. A topic the map does not
// name is refused with [ErrUnmapped] in phases 1 to 3. The first failure
// stops the send and is returned as a [*WriteError].
func (p *Producer) Send(ctx context.Context, topic string, m *Message) error {
	plan := p.src.MigrationPlan()
	if m.ID == "" {
		m.ID = NewID()
	}
	if plan.Phase == Before {
		return p.write(ctx, Old, p.old, topic, topic, *m, nil)
	}
	target, ok := plan.Target(topic)
	if !ok {
		return &WriteError{Topic: topic, Side: New, Err: fmt.Errorf("%w: %q (phase %s)", ErrUnmapped, topic, plan.Phase)}
	}
	if plan.Phase == NewOnly {
		return p.write(ctx, New, p.new, topic, target, *m, nil)
	}
	if err := p.write(ctx, Old, p.old, topic, topic, *m, nil); err != nil {
		return err
	}
	return p.write(ctx, New, p.new, topic, target, *m, []Side{Old})
}

func (p *Producer) write(ctx context.Context, side Side, s Sender, topic, name string, m Message, wrote []Side) error {
	if err := s.Send(ctx, name, m); err != nil {
		return &WriteError{Topic: topic, Side: side, Wrote: wrote, Err: err}
	}
	return nil
}

// NewID returns a fresh random message id (32 hex digits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
