package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Epochs say which messages of one environment a lane consumer owns on a
// bus whose messages carry one sequence that every consumer of them sees
// (a JetStream stream sequence): a lane owns its env's messages whose
// sequence lies in one of its epochs, the trunk owns the rest. An epoch is
// opened when the lane becomes live and closed when it leaves; both
// boundaries are taken past every sequence delivered so far to the trunk's
// and the lane's consumer ([Epochs.Boundary]), so a message's owner is
// fixed the moment it is delivered to either of them, whoever reads the
// epochs later and in whatever order consumers see the change of lanes.
// That is what makes a late lane and a dropped lane exactly-once: the
// trunk handles what it read before the lane's epoch opened, the lane (or,
// once it left, the trunk's hand-over of the lane's backlog) what lies
// inside, and a redelivery after a crash goes to the side that owns it.
//
// The zero Epochs is empty: the trunk owns everything. Epochs are stored
// as text ([Epochs.String], [ParseEpochs]) in a shared store with
// compare-and-set (a JetStream key-value bucket).
type Epochs struct {
	// List holds the epochs, oldest first, boundaries strictly increasing.
	// The last one may be open (End 0).
	List []Epoch
	// HandedOver is the end of the last epoch whose backlog the trunk has
	// taken over after the lane left (0: none).
	HandedOver uint64
}

// Epoch is one stretch of sequences [Start, End) a lane owns; End 0: open.
type Epoch struct{ Start, End uint64 }

// MaxEpochs bounds how many epochs are kept; the oldest are forgotten
// first (a redelivery older than every kept epoch goes to the trunk).
const MaxEpochs = 64

// ErrEpochs is wrapped by the errors of [ParseEpochs] and of an epoch
// change that would break the order of boundaries.
var ErrEpochs = errors.New("shadowlane/bus: invalid lane epochs")

// Boundary returns the first sequence past both consumers' delivered
// sequences: the start or end of an epoch opened or closed now.
func Boundary(trunkDelivered, laneDelivered uint64) uint64 {
	return max(trunkDelivered, laneDelivered) + 1
}

// Owns reports whether the lane owns the message with sequence seq.
func (e Epochs) Owns(seq uint64) bool {
	for i := len(e.List) - 1; i >= 0; i-- {
		p := e.List[i]
		if seq >= p.Start {
			return p.End == 0 || seq < p.End
		}
	}
	return false
}

// IsOpen reports whether the last epoch is open (the lane owns every
// message from its start on).
func (e Epochs) IsOpen() bool { return len(e.List) > 0 && e.List[len(e.List)-1].End == 0 }

// End returns the end of the last closed epoch (0: none closed).
func (e Epochs) End() uint64 {
	for i := len(e.List) - 1; i >= 0; i-- {
		if e.List[i].End != 0 {
			return e.List[i].End
		}
	}
	return 0
}

// Backlog reports whether a closed epoch may hold messages the lane left
// unhandled that no one has handed over yet.
func (e Epochs) Backlog() bool { return !e.IsOpen() && e.End() > e.HandedOver }

// Open returns e with an epoch opened at boundary b; e itself when an
// epoch is open already. b must lie past every boundary of e.
func (e Epochs) Open(b uint64) (Epochs, error) {
	if e.IsOpen() {
		return e, nil
	}
	if n := len(e.List); b == 0 || n > 0 && b < e.List[n-1].End {
		return e, fmt.Errorf("%w: open at %d after %v", ErrEpochs, b, e)
	}
	out := Epochs{List: append(e.List[max(0, len(e.List)+1-MaxEpochs):len(e.List):len(e.List)], Epoch{Start: b}), HandedOver: e.HandedOver}
	return out, nil
}

// Close returns e with its open epoch closed at boundary b (not before its
// start); e itself when no epoch is open.
func (e Epochs) Close(b uint64) (Epochs, error) {
	if !e.IsOpen() {
		return e, nil
	}
	n := len(e.List)
	if b < e.List[n-1].Start {
		return e, fmt.Errorf("%w: close at %d before start %d", ErrEpochs, b, e.List[n-1].Start)
	}
	out := Epochs{List: append([]Epoch(nil), e.List...), HandedOver: e.HandedOver}
	out.List[n-1].End = b
	return out, nil
}

// String encodes e: "h=<handed over>;<start>-<end>,<start>-" (an open
// epoch has no end).
func (e Epochs) String() string {
	var b strings.Builder
	b.WriteString("h=")
	b.WriteString(strconv.FormatUint(e.HandedOver, 10))
	b.WriteByte(';')
	for i, p := range e.List {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(p.Start, 10))
		b.WriteByte('-')
		if p.End != 0 {
			b.WriteString(strconv.FormatUint(p.End, 10))
		}
	}
	return b.String()
}

// ParseEpochs decodes [Epochs.String]'s text; empty text is the zero
// Epochs. Boundaries must be positive and strictly increasing, and only
// the last epoch may be open.
func ParseEpochs(s string) (Epochs, error) {
	var e Epochs
	if s == "" {
		return e, nil
	}
	h, list, ok := strings.Cut(s, ";")
	hv, found := strings.CutPrefix(h, "h=")
	if !ok || !found {
		return Epochs{}, fmt.Errorf("%w: %q", ErrEpochs, s)
	}
	var err error
	if e.HandedOver, err = strconv.ParseUint(hv, 10, 64); err != nil {
		return Epochs{}, fmt.Errorf("%w: %q", ErrEpochs, s)
	}
	if list == "" {
		return e, nil
	}
	parts := strings.Split(list, ",")
	if len(parts) > MaxEpochs {
		return Epochs{}, fmt.Errorf("%w: %d epochs, at most %d", ErrEpochs, len(parts), MaxEpochs)
	}
	var last uint64
	for i, part := range parts {
		a, b, ok := strings.Cut(part, "-")
		if !ok {
			return Epochs{}, fmt.Errorf("%w: %q", ErrEpochs, s)
		}
		var p Epoch
		if p.Start, err = strconv.ParseUint(a, 10, 64); err != nil || p.Start == 0 || p.Start < last {
			return Epochs{}, fmt.Errorf("%w: %q", ErrEpochs, s)
		}
		if b != "" {
			if p.End, err = strconv.ParseUint(b, 10, 64); err != nil || p.End < p.Start {
				return Epochs{}, fmt.Errorf("%w: %q", ErrEpochs, s)
			}
			last = p.End
		} else if i != len(parts)-1 {
			return Epochs{}, fmt.Errorf("%w: only the last epoch may be open: %q", ErrEpochs, s)
		}
		e.List = append(e.List, p)
	}
	return e, nil
}

// HandOver returns e recording that the backlog up to the last closed
// epoch's end was taken over.
func (e Epochs) HandOver() Epochs {
	e.HandedOver = max(e.HandedOver, e.End())
	return e
}

// LaneNameFor returns the name of env's lane instance of name
// ("<name>-<env>"), as [Rules.LaneName] does on a lane instance: what a
// trunk uses to find a lane's queue or consumer.
func LaneNameFor(name, env string) string {
	if env == "" || name == "" || strings.HasSuffix(name, "-"+env) {
		return name
	}
	return name + "-" + env
}
