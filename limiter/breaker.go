package limiter

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane/internal/enumname"
)

// Strategy is what a circuit breaker measures.
type Strategy uint8

// Breaker strategies.
const (
	// ErrorRatio trips when errors/requests in the window reaches Threshold (0..1].
	ErrorRatio Strategy = iota + 1
	// ErrorCount trips when the errors in the window reach Threshold.
	ErrorCount
	// SlowRatio trips when calls slower than SlowCall / requests reaches Threshold (0..1].
	SlowRatio
)

// String returns "error_ratio", "error_count" or "slow_ratio".
func (s Strategy) String() string {
	return enumname.String([]string{ErrorRatio: "error_ratio", ErrorCount: "error_count", SlowRatio: "slow_ratio"}, s, "Strategy")
}

// BreakerRule configures a circuit breaker on the resources a [Rule]
// matches.
//
// Closed, it passes everything and measures outcomes over a sliding Window;
// it is judged on every completion: when at least MinRequests completed in
// the window and the measure reaches Threshold, it opens and refuses
// everything (with [ErrCircuitOpen]) for OpenFor. Then it is half-open: it
// admits up to Probes requests; if all of them succeed it closes (with
// fresh statistics), if any fails it opens again for another OpenFor.
//
// A completion counts only for the state period its call was admitted in:
// calls admitted while closed that complete after a trip, and calls from
// before a close that complete after it, are ignored (Sentinel instead
// counts them in whatever window is current, and lets any completion
// decide a half-open breaker).
type BreakerRule struct {
	Strategy  Strategy
	Threshold float64       // ratio in (0, 1] or an error count ≥ 1
	SlowCall  time.Duration // SlowRatio: a call taking longer is slow
	// MinRequests is how many completions the window must hold before the
	// measure is judged; 0 means no minimum (the first completion is
	// judged), as in Sentinel's MinRequestAmount.
	MinRequests int
	Window      time.Duration // statistics window, default 10s (10 buckets)
	OpenFor     time.Duration // default 5s
	Probes      int           // half-open probes, default 1
}

func (b *BreakerRule) validate() []fieldProblem {
	var errs []fieldProblem
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldProblem{field, fmt.Sprintf(format, args...)})
	}
	switch b.Strategy {
	case ErrorRatio, SlowRatio:
		if !(b.Threshold > 0 && b.Threshold <= 1) {
			bad("threshold", "%v: a ratio must be in (0, 1]", b.Threshold)
		}
	case ErrorCount:
		if !(b.Threshold >= 1) {
			bad("threshold", "%v: an error count must be ≥ 1", b.Threshold)
		}
	default:
		bad("strategy", "unknown strategy %d", b.Strategy)
	}
	if b.Strategy == SlowRatio && b.SlowCall <= 0 {
		bad("slowCall", "slow_ratio needs a positive slow-call duration")
	}
	nonNegative(bad, "minRequests", b.MinRequests)
	nonNegative(bad, "probes", b.Probes)
	nonNegative(bad, "openFor", b.OpenFor)
	if b.Window < 0 || (b.Window > 0 && b.Window < 10*time.Millisecond) {
		bad("window", "%v: want 0 (default) or at least 10ms", b.Window)
	}
	return errs
}

// State is a circuit breaker's state.
type State int32

// Breaker states.
const (
	Closed State = iota
	Open
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	return enumname.String([]string{Closed: "closed", Open: "open", HalfOpen: "half-open"}, s, "State")
}

// StateChange describes one breaker transition, given to listeners
// registered with [WithStateListener].
type StateChange struct {
	Resource, Rule string
	From, To       State
	At             time.Time
	// Value is the measure that tripped the breaker (ratio or count) on a
	// change to Open from Closed; 0 otherwise.
	Value float64
}

type bfield int

const (
	bTotal bfield = iota
	bErr
	bSlow
)

type breaker struct {
	l              *Limiter
	cfg            BreakerRule
	resource, rule string
	minReq         int64
	openFor        int64
	probes         int32

	// st packs the state (low 2 bits) with the time it was entered (ns
	// since the limiter's epoch, upper bits), so both change in one CAS.
	st     atomic.Int64
	issued atomic.Int32 // probes admitted in this half-open period
	passed atomic.Int32 // probes succeeded in this half-open period
	w      *window[bfield]
}

func newBreaker(l *Limiter, cfg BreakerRule, resource, rule string) *breaker {
	b := &breaker{l: l, cfg: cfg, resource: resource, rule: rule,
		minReq: int64(cfg.MinRequests), openFor: int64(cfg.OpenFor), probes: int32(cfg.Probes)}
	if b.openFor == 0 {
		b.openFor = int64(5 * time.Second)
	}
	if b.probes == 0 {
		b.probes = 1
	}
	win := cfg.Window
	if win == 0 {
		win = 10 * time.Second
	}
	b.w = newWindow[bfield](10, int64(win)/10)
	return b
}

// State returns the breaker's current state.
func (b *breaker) State() State { return State(b.st.Load() & 3) }

func pack(s State, at int64) int64 { return at<<2 | int64(s) }

// move changes the state from the word old to (to, now); only one
// goroutine wins a given transition.
func (b *breaker) move(old int64, to State, now int64, v float64) bool {
	if !b.st.CompareAndSwap(old, pack(to, now)) {
		return false
	}
	if to == Open {
		b.issued.Store(0)
		b.passed.Store(0)
	}
	b.notify(State(old&3), to, now, v)
	return true
}

// allow decides at entry. probe is true when the request was admitted as a
// half-open probe (its outcome decides the next state).
func (b *breaker) allow(now int64) (probe bool, err *BlockError) {
	w := b.st.Load()
	switch State(w & 3) {
	case Closed:
		return false, nil
	case Open:
		until := w>>2 + b.openFor
		if now < until {
			return false, b.blocked(until - now)
		}
		b.move(w, HalfOpen, now, 0)
	}
	// Half-open: admit up to probes.
	if b.issued.Add(1) <= b.probes {
		return true, nil
	}
	b.issued.Add(-1)
	return false, b.blocked(0)
}

func (b *breaker) blocked(retry int64) *BlockError {
	return &BlockError{Reason: ReasonBreaker, Limit: b.cfg.Threshold, Value: 0, RetryAfter: time.Duration(retry)}
}

// cancelProbe gives back a probe slot that a later check refused.
func (b *breaker) cancelProbe() { b.issued.Add(-1) }

// done records an outcome at exit; start is when the call was admitted.
//
// The breaker is evaluated on every completion (a success that brings the
// window up to MinRequests can trip it). A completion counts only toward
// the state period in which its call was admitted: calls admitted before
// the breaker last changed state (late completions from before a trip,
// or from before a half-open probe closed it) count for nothing, so they
// can neither re-trip a fresh window nor decide a probe.
func (b *breaker) done(now, rt, start int64, failed, probe bool) {
	bad := failed
	if b.cfg.Strategy == SlowRatio {
		bad = rt > int64(b.cfg.SlowCall)
	}
	w := b.st.Load()
	if probe {
		if State(w&3) != HalfOpen {
			return
		}
		if bad {
			b.move(w, Open, now, 0)
			return
		}
		if b.passed.Add(1) >= b.probes {
			b.w.reset()
			b.move(w, Closed, now, 0)
		}
		return
	}
	if State(w&3) != Closed || start < w>>2 {
		return
	}
	bk := b.w.bucket(now)
	bk.v[bTotal].Add(1)
	if bad {
		if b.cfg.Strategy == SlowRatio {
			bk.v[bSlow].Add(1)
		} else {
			bk.v[bErr].Add(1)
		}
	}
	s := b.w.sum(now, bTotal, bErr, bSlow)
	total := s[bTotal]
	if total == 0 || total < b.minReq {
		return
	}
	var v float64
	switch b.cfg.Strategy {
	case ErrorRatio:
		v = float64(s[bErr]) / float64(total)
	case ErrorCount:
		v = float64(s[bErr])
	case SlowRatio:
		v = float64(s[bSlow]) / float64(total)
	}
	if v >= b.cfg.Threshold {
		b.move(w, Open, now, v)
	}
}

func (b *breaker) notify(from, to State, now int64, v float64) {
	if len(b.l.listeners) == 0 {
		return
	}
	ev := StateChange{Resource: b.resource, Rule: b.rule, From: from, To: to, At: b.l.epoch.Add(time.Duration(now)), Value: v}
	for _, fn := range b.l.listeners {
		fn(ev)
	}
}

// BreakerState returns the state of the breaker that rule (by name) keeps
// for resource, and false when there is none.
func (l *Limiter) BreakerState(resource, rule string) (State, bool) {
	l.smu.Lock()
	s, ok := l.states[stateKey{rule, resource, kindBreaker}]
	l.smu.Unlock()
	if !ok || s.br == nil {
		return 0, false
	}
	return s.br.State(), true
}
