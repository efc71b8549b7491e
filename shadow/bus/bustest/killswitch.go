package bustest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Switch is the ledger of a kill-switch test: per message value, how many
// times a handler saw it and whether any of those fell while load tests
// were off. Its gate keeps handlers out while the switch moves ([Switch.Flip]),
// so no handling is mid-flight across a flip. The zero Switch is not
// ready: use [NewSwitch]. It is safe for concurrent use.
type Switch struct {
	enabled func() bool
	gate    sync.RWMutex

	mu       sync.Mutex
	n        map[string]int
	whileOff map[string]bool
}

// NewSwitch returns an empty ledger; enabled reports whether load tests
// are on (for a *shadowlane.Runtime: its LoadTestEnabled's first result).
func NewSwitch(enabled func() bool) *Switch {
	return &Switch{enabled: enabled, n: map[string]int{}, whileOff: map[string]bool{}}
}

// Handle records that a handler saw v under ctx (call it from the
// handler); a load-test ctx seen while the switch is off is marked.
func (s *Switch) Handle(ctx context.Context, v string) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	off := propagation.IsLoadTest(ctx) && !s.enabled()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n[v]++
	if off {
		s.whileOff[v] = true
	}
}

// Flip runs set, which moves the switch, while no handler is in
// [Switch.Handle].
func (s *Switch) Flip(set func()) {
	s.gate.Lock()
	defer s.gate.Unlock()
	set()
}

// Count returns how many distinct values with prefix were handled, and how
// many handlings of them there were.
func (s *Switch) Count(prefix string) (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, n := range s.n {
		if strings.HasPrefix(v, prefix) {
			distinct++
			total += n
		}
	}
	return distinct, total
}

// WaitFor waits (60 s at most) until n distinct values with prefix were
// handled.
func (s *Switch) WaitFor(t testing.TB, prefix string, n int) {
	t.Helper()
	Wait(t, 60*time.Second, func() bool { d, _ := s.Count(prefix); return d >= n }, func() string {
		d, tot := s.Count(prefix)
		return prefix + ": handled " + strconv.Itoa(d) + " distinct (" + strconv.Itoa(tot) + " in all), want " + strconv.Itoa(n)
	})
}

// Check fails t unless every value was handled exactly once, want
// distinct values in all, and none while load tests were off, but for at
// most straddle values with prefix stream: a message the adapter decided
// while the switch was on may start its handler just after the flip (the
// switch stops new decisions; work already decided completes, like an
// HTTP request admitted before it), at most one per consumer goroutine,
// and only among the messages streaming across the flip. A switch that
// did not hold would let most of the messages streamed while it was off
// through.
func (s *Switch) Check(t testing.TB, stream string, straddle, want int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var straddled []string
	for v, n := range s.n {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
		if s.whileOff[v] {
			if strings.HasPrefix(v, stream) {
				straddled = append(straddled, v)
				continue
			}
			t.Errorf("%s handled while load tests were off", v)
		}
	}
	if len(straddled) > straddle {
		t.Errorf("%d messages handled while load tests were off (at most %d decided just before the flip may be): %v", len(straddled), straddle, straddled)
	} else if len(straddled) > 0 {
		t.Logf("%d messages decided just before the flip were handled just after it: %v", len(straddled), straddled)
	}
	if len(s.n) != want {
		t.Errorf("handled %d distinct, want %d", len(s.n), want)
	}
}
