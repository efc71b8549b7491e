package bustest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
)

// Ledger records, per message id, every successful handling (by whom,
// under which mark), every attempt and every refusal. The zero Ledger is
// not ready: use [NewLedger]. It is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	handled  map[string][]Handling
	attempts map[string]int
	refused  map[string][]error
	total    atomic.Int64
}

// Handling is one successful handling of a message.
type Handling struct {
	By   string
	Mark propagation.Mark
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{handled: map[string][]Handling{}, attempts: map[string]int{}, refused: map[string][]error{}}
}

// Attempt counts an attempt at key (a handler call, successful or not)
// and returns how many there were so far.
func (l *Ledger) Attempt(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts[key]++
	return l.attempts[key]
}

// Attempts returns how many attempts key had.
func (l *Ledger) Attempts(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attempts[key]
}

// Handle records that by handled id under mark m.
func (l *Ledger) Handle(id, by string, m propagation.Mark) {
	l.mu.Lock()
	l.handled[id] = append(l.handled[id], Handling{by, m})
	l.mu.Unlock()
	l.total.Add(1)
}

// Try is the body of a reconciliation test's handler: who's attempt at
// message id, under the mark in ctx. It counts the attempt (key
// who+"/"+id); a poison id (prefix "X-") fails every time, one that flaky
// reports true for fails its first attempt, and any other is recorded as
// handled by who: Try returns nil.
func (l *Ledger) Try(ctx context.Context, who, id string, flaky func(id string) bool) error {
	a := l.Attempt(who + "/" + id)
	if strings.HasPrefix(id, "X-") {
		return errors.New("poison")
	}
	if a == 1 && flaky(id) {
		return errors.New("transient")
	}
	l.Handle(id, who, propagation.FromContext(ctx))
	return nil
}

// Refuse records that id reached the refusal callback with err.
func (l *Ledger) Refuse(id string, err error) {
	l.mu.Lock()
	l.refused[id] = append(l.refused[id], err)
	l.mu.Unlock()
}

// Total returns how many successful handlings there were, all ids.
func (l *Ledger) Total() int64 { return l.total.Load() }

// Handled returns the handlings of id.
func (l *Ledger) Handled(id string) []Handling {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.handled[id])
}

// Refused returns the refusals of id.
func (l *Ledger) Refused(id string) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.refused[id])
}

// Count returns how many handlings by did.
func (l *Ledger) Count(by string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, hs := range l.handled {
		for _, h := range hs {
			if h.By == by {
				n++
			}
		}
	}
	return n
}

// Ids returns how many distinct ids were handled.
func (l *Ledger) Ids() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.handled)
}

// RefusedIds returns how many distinct ids were refused.
func (l *Ledger) RefusedIds() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.refused)
}

// Check fails t for every id of ids that was never handled, was also
// refused, or was handled by someone not in by ("a|b": either) or under
// another mark than run and env; it returns the duplicates (handlings
// beyond the first) and how many ids each consumer handled first.
func (l *Ledger) Check(t testing.TB, ids []string, by, run, env string) (dups int, first map[string]int) {
	t.Helper()
	who := strings.Split(by, "|")
	first = map[string]int{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		hs := l.handled[id]
		if len(hs) == 0 {
			t.Errorf("%s: lost (never handled)", id)
			continue
		}
		if len(l.refused[id]) != 0 {
			t.Errorf("%s: handled and refused %v", id, l.refused[id])
		}
		first[hs[0].By]++
		dups += len(hs) - 1
		if len(hs) > 1 {
			t.Logf("duplicate %s: %+v", id, hs)
		}
		for _, h := range hs {
			if !slices.Contains(who, h.By) || h.Mark.Run != run || h.Mark.Env != env {
				t.Errorf("%s: handled by %s under %+v, want %s under run %q env %q", id, h.By, h.Mark, by, run, env)
			}
		}
	}
	return dups, first
}

// RefusedOnce fails t for every id of ids that was handled, or did not
// reach the refusal callback exactly once with an error wrapping want
// (errors.Is; a nil want takes any error).
func (l *Ledger) RefusedOnce(t testing.TB, want error, ids ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		rs, hs := l.refused[id], l.handled[id]
		if len(rs) != 1 || len(hs) != 0 || want != nil && !errors.Is(rs[0], want) {
			t.Errorf("%s: refused %v, handled %+v; want refused once (%v), never handled", id, rs, hs, want)
		}
	}
}

// WaitIDs waits (60 s at most) until every id is handled or refused.
func (l *Ledger) WaitIDs(t testing.TB, what string, ids []string) {
	t.Helper()
	missing, first := 0, ""
	Wait(t, 60*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		missing, first = 0, ""
		for _, id := range ids {
			if len(l.handled[id]) == 0 && len(l.refused[id]) == 0 {
				if missing == 0 {
					first = id
				}
				missing++
			}
		}
		return missing == 0
	}, func() string {
		return what + ": " + strconv.Itoa(missing) + " of " + strconv.Itoa(len(ids)) + " messages neither handled nor refused (first " + first + ")"
	})
}

// WaitRefused waits (60 s at most) until every id reached the refusal
// callback.
func (l *Ledger) WaitRefused(t testing.TB, ids ...string) {
	t.Helper()
	missing := ""
	Wait(t, 60*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		missing = ""
		for _, id := range ids {
			if len(l.refused[id]) == 0 {
				missing = id
			}
		}
		return missing == ""
	}, func() string { return missing + " never refused" })
}

// Wait polls ok every 25 ms until it reports true, and fails t with
// what() when it did not within timeout.
func Wait(t testing.TB, timeout time.Duration, ok func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Messages is how many messages a reconciliation test sends in all: 2,000
// by default, 10,000 with SHADOWLANE_LONG=1, 400 under -short.
func Messages() int {
	switch {
	case os.Getenv("SHADOWLANE_LONG") == "1":
		return 10000
	case testing.Short():
		return 400
	}
	return 2000
}

// Split returns the ids of list that keep reports true, and the others.
func Split(list []string, keep func(id string) bool) (kept, other []string) {
	for _, id := range list {
		if keep(id) {
			kept = append(kept, id)
		} else {
			other = append(other, id)
		}
	}
	return kept, other
}

// TestDataRuntime returns a runtime, closed when t ends, that knows
// load-test data (testData:) by the prefix "lt-", the id range
// 9000000000-9099999999 and a header X-Test of any value, with
// testData.action action ("": the default, refuse); for the lost-mark
// tests.
func TestDataRuntime(t testing.TB, action string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{TestData: shadowlane.TestDataConfig{
		Action:   action,
		Prefixes: []string{"lt-"},
		IDRanges: []shadowlane.IDRange{{Min: 9000000000, Max: 9099999999}},
		Headers:  []shadowlane.TestDataHeader{{Name: "X-Test", Value: "*"}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// SwitchRuntime returns a runtime for a kill-switch test (service
// "bus-test", trust internal, not made the default one), closed when t
// ends; the test flips its load tests off and on with SetLoadTest and
// judges the handlings with a [Switch].
func SwitchRuntime(t testing.TB) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "bus-test", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}
