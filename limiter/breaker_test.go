package limiter_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) listen(c limiter.StateChange) {
	tr.mu.Lock()
	tr.got = append(tr.got, c.From.String()+">"+c.To.String())
	tr.mu.Unlock()
}

func (tr *transitions) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := ""
	for _, g := range tr.got {
		s += g + " "
	}
	return s
}

var errDown = errors.New("downstream down")

func breakerLimiter(t *testing.T, br limiter.BreakerRule) (*limiter.Resource, *limiter.ManualClock, *transitions) {
	t.Helper()
	clk := limiter.NewManualClock(t0)
	tr := &transitions{}
	l := limiter.New(limiter.WithClock(clk), limiter.WithStateListener(tr.listen))
	if err := l.SetRules([]limiter.Rule{{Name: "cb", Resource: "GET /pay", Breaker: &br}}); err != nil {
		t.Fatal(err)
	}
	return l.Resource("GET /pay"), clk, tr
}

// call enters and exits with err after taking d.
func call(res *limiter.Resource, clk *limiter.ManualClock, d time.Duration, err error) error {
	tok, berr := res.Entry(prod)
	if berr != nil {
		return berr
	}
	clk.Advance(d)
	tok.ExitErr(err)
	return nil
}

func TestBreakerErrorRatio(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorRatio, Threshold: 0.5, MinRequests: 10, OpenFor: 5 * time.Second, Probes: 2})
	// 9 errors: below MinRequests, stays closed.
	for range 9 {
		if err := call(res, clk, time.Millisecond, errDown); err != nil {
			t.Fatal(err)
		}
	}
	if tr.String() != "" {
		t.Fatalf("tripped below MinRequests: %s", tr)
	}
	if err := call(res, clk, time.Millisecond, errDown); err != nil {
		t.Fatal(err)
	}
	if tr.String() != "closed>open " {
		t.Fatalf("transitions %q after 10/10 errors", tr)
	}
	err := call(res, clk, 0, nil)
	var be *limiter.BlockError
	if !errors.As(err, &be) || !errors.Is(err, limiter.ErrCircuitOpen) || be.Reason != limiter.ReasonBreaker || be.RetryAfter != 5*time.Second || be.Rule != "cb" {
		t.Fatalf("open breaker: %v", err)
	}
	// After OpenFor: half-open, two probes admitted, a third refused.
	clk.Advance(5 * time.Second)
	p1, err1 := res.Entry(prod)
	p2, err2 := res.Entry(prod)
	_, err3 := res.Entry(prod)
	if err1 != nil || err2 != nil || !errors.Is(err3, limiter.ErrCircuitOpen) {
		t.Fatalf("half-open probes: %v %v %v", err1, err2, err3)
	}
	p1.Exit()
	if tr.String() != "closed>open open>half-open " {
		t.Fatalf("one probe of two closed it: %s", tr)
	}
	p2.ExitErr(errDown) // a failed probe reopens
	if tr.String() != "closed>open open>half-open half-open>open " {
		t.Fatalf("failed probe: %s", tr)
	}
	clk.Advance(4 * time.Second)
	if err := call(res, clk, 0, nil); !errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatalf("reopened breaker passed before OpenFor: %v", err)
	}
	clk.Advance(time.Second)
	for range 2 {
		if err := call(res, clk, time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
	}
	if tr.String() != "closed>open open>half-open half-open>open open>half-open half-open>closed " {
		t.Fatalf("healing: %s", tr)
	}
	// Closed with fresh statistics: 4 errors and 6 successes stay under 50%.
	for i := range 10 {
		var e error
		if i%5 < 2 {
			e = errDown
		}
		if err := call(res, clk, time.Millisecond, e); err != nil {
			t.Fatalf("closed breaker refused: %v", err)
		}
	}
}

func TestBreakerErrorCountWindow(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorCount, Threshold: 3, MinRequests: 1, Window: time.Second})
	// Errors spread over more than the window never add up to 3.
	for range 6 {
		if err := call(res, clk, 0, errDown); err != nil {
			t.Fatal(err)
		}
		clk.Advance(600 * time.Millisecond)
	}
	if tr.String() != "" {
		t.Fatalf("errors outside the window tripped it: %s", tr)
	}
	for range 3 {
		_ = call(res, clk, time.Millisecond, errDown)
	}
	if tr.String() != "closed>open " {
		t.Fatalf("3 errors within the window: %q", tr)
	}
	// Default OpenFor is 5 s.
	clk.Advance(5*time.Second - time.Millisecond)
	if err := call(res, clk, 0, nil); err == nil {
		t.Fatal("passed before the default OpenFor")
	}
}

func TestBreakerSlowRatio(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.SlowRatio, Threshold: 0.5, SlowCall: 100 * time.Millisecond, MinRequests: 4})
	// Slow successes count: errors do not, for this strategy.
	for range 4 {
		_ = call(res, clk, 10*time.Millisecond, errDown)
	}
	if tr.String() != "" {
		t.Fatalf("fast errors tripped a slow-call breaker: %s", tr)
	}
	for range 4 {
		_ = call(res, clk, 200*time.Millisecond, nil)
	}
	if tr.String() != "closed>open " {
		t.Fatalf("4 slow of 8: %q", tr)
	}
	clk.Advance(5 * time.Second)
	// A slow probe reopens it.
	_ = call(res, clk, 150*time.Millisecond, nil)
	if tr.String() != "closed>open open>half-open half-open>open " {
		t.Fatalf("slow probe: %q", tr)
	}
}

func TestBreakerConcurrentProbes(t *testing.T) {
	res, clk, _ := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorCount, Threshold: 1, MinRequests: 1, Probes: 3})
	_ = call(res, clk, 0, errDown)
	clk.Advance(5 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var toks []limiter.Token
	for range 50 {
		wg.Go(func() {
			if tok, err := res.Entry(prod); err == nil {
				mu.Lock()
				toks = append(toks, tok)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(toks) != 3 {
		t.Fatalf("%d probes admitted concurrently, want 3", len(toks))
	}
	for _, tok := range toks {
		tok.Exit()
	}
	if err := call(res, clk, 0, nil); err != nil {
		t.Fatalf("not closed after 3 good probes: %v", err)
	}
}

// TestBreakerJudgedOnEveryCompletion: a success that brings the window up
// to MinRequests trips the breaker when the ratio is already reached (it
// used to wait for the next failure).
func TestBreakerJudgedOnEveryCompletion(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorRatio, Threshold: 0.5, MinRequests: 4, OpenFor: time.Second})
	for _, e := range []error{errDown, errDown, nil} {
		if err := call(res, clk, time.Millisecond, e); err != nil {
			t.Fatal(err)
		}
	}
	if tr.String() != "" {
		t.Fatalf("tripped below MinRequests: %s", tr)
	}
	if err := call(res, clk, time.Millisecond, nil); err != nil { // 2 of 4 failed: 0.5
		t.Fatal(err)
	}
	if tr.String() != "closed>open " {
		t.Fatalf("after the 4th completion (a success, ratio 0.5): %q, want closed>open", tr)
	}
}

// TestBreakerMinRequestsZero: MinRequests 0 means no minimum.
func TestBreakerMinRequestsZero(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorRatio, Threshold: 0.5})
	if err := call(res, clk, time.Millisecond, errDown); err != nil {
		t.Fatal(err)
	}
	if tr.String() != "closed>open " {
		t.Fatalf("first completion failed with MinRequests 0: %q, want closed>open", tr)
	}
}

// TestBreakerLateCompletions: completions of calls admitted before a state
// change count for nothing: a slow failure admitted before the trip
// neither decides the half-open probe nor re-trips the fresh window.
func TestBreakerLateCompletions(t *testing.T) {
	res, clk, tr := breakerLimiter(t, limiter.BreakerRule{Strategy: limiter.ErrorCount, Threshold: 1, MinRequests: 1, OpenFor: time.Second})
	slow1, err1 := res.Entry(prod)
	slow2, err2 := res.Entry(prod)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if err := call(res, clk, time.Millisecond, errDown); err != nil { // trips
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	probe, err := res.Entry(prod) // half-open probe
	if err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	slow1.ExitErr(errDown) // late: admitted while closed, before the trip
	if tr.String() != "closed>open open>half-open " {
		t.Fatalf("a late failure decided the half-open breaker: %s", tr)
	}
	probe.Exit()
	if tr.String() != "closed>open open>half-open half-open>closed " {
		t.Fatalf("probe success: %s", tr)
	}
	slow2.ExitErr(errDown) // late again: the fresh window must not count it
	if tr.String() != "closed>open open>half-open half-open>closed " {
		t.Fatalf("a late failure re-tripped the fresh window: %s", tr)
	}
	if err := call(res, clk, time.Millisecond, errDown); err != nil { // a current failure does
		t.Fatal(err)
	}
	if !strings.HasSuffix(tr.String(), "half-open>closed closed>open ") {
		t.Fatalf("a current failure did not trip: %s", tr)
	}
}
