package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

// offer sends one request of ctx's class every step for d and returns how
// many passed.
func offer(res *limiter.Resource, clk *limiter.ManualClock, ctx context.Context, step, d time.Duration) int {
	n := 0
	for range int(d / step) {
		if tok, err := res.Entry(ctx); err == nil {
			n++
			tok.Exit()
		}
		clk.Advance(step)
	}
	return n
}

// TestLoadTestShareOfRate: the load-test class alone gets its share of the
// rate (and of the burst), never zero; production alone gets all of it.
func TestLoadTestShareOfRate(t *testing.T) {
	for _, c := range []struct {
		rule     limiter.Rule
		wantLT   float64 // per second, load-test alone
		wantProd float64 // per second, production alone
	}{
		{limiter.Rule{Resource: "a", QPS: 10, Burst: 1, LoadTestShare: 0.5}, 5, 10},
		{limiter.Rule{Resource: "a", QPS: 100, Burst: 1, LoadTestShare: 0.2}, 20, 100},
		{limiter.Rule{Resource: "a", QPS: 100, Burst: 10, LoadTestShare: 0.05}, 5, 100},
		// The documented example: qps 200, loadTestShare 0.5.
		{limiter.Rule{Resource: "a", QPS: 200, Burst: 20, LoadTestShare: 0.5}, 100, 200},
	} {
		t.Run(fmt.Sprintf("qps%v-burst%d-share%v", c.rule.QPS, c.rule.Burst, c.rule.LoadTestShare), func(t *testing.T) {
			l, clk := newLimiter(t, c.rule)
			// 5 s of load-test traffic alone at 1000/s on an idle bucket.
			got := offer(l.Resource("a"), clk, lt, time.Millisecond, 5*time.Second)
			ltBurst := math.Max(1, math.Floor(float64(max(c.rule.Burst, 1))*c.rule.LoadTestShare))
			if lo, hi := 5*c.wantLT, 5*c.wantLT+ltBurst; float64(got) < lo || float64(got) > hi {
				t.Fatalf("load-test alone: %d in 5 s, want %v..%v", got, lo, hi)
			}
			l2, clk2 := newLimiter(t, c.rule)
			got = offer(l2.Resource("a"), clk2, prod, time.Millisecond, 5*time.Second)
			if lo, hi := 5*c.wantProd, 5*c.wantProd+float64(max(c.rule.Burst, 1)); float64(got) < lo || float64(got) > hi {
				t.Fatalf("production alone: %d in 5 s, want %v..%v", got, lo, hi)
			}
		})
	}
}

// TestLoadTestShareValidation: a share a class could never pass with, or
// that would mean nothing, is refused with the reason.
func TestLoadTestShareValidation(t *testing.T) {
	for _, c := range []struct {
		rule limiter.Rule
		want string
	}{
		{limiter.Rule{Resource: "a", QPS: 10, Class: limiter.ClassLoadTest, LoadTestShare: 0.5}, "loadTestShare: applies only to a rule for both classes"},
		{limiter.Rule{Resource: "a", QPS: 10, LoadTestShare: 0.5, Param: &limiter.ParamRule{Key: "k"}}, "loadTestShare: not supported on a param rule"},
		{limiter.Rule{Resource: "a", QPS: 2, WarmUp: 10 * time.Second}, "warmUp: cold threshold qps/coldFactor = 0.667 is below 1 request per second"},
		{limiter.Rule{Resource: "a", QPS: 4, WarmUp: 10 * time.Second, LoadTestShare: 0.5}, "loadTestShare: load-test cold threshold qps×share/coldFactor = 0.667"},
		{limiter.Rule{Resource: "a", QPS: 100, WarmUp: 10 * time.Second, MaxWait: time.Second}, "maxWait: token warm-up does not queue"},
		{limiter.Rule{Resource: "a", QPS: 100, WarmUp: 10 * time.Second, WarmUpMode: "steep"}, `warmUpMode: "steep" is not one of token, linear`},
	} {
		err := c.rule.Validate()
		if err == nil || !errors.Is(err, limiter.ErrInvalidRule) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.rule, err, c.want)
		}
	}
	// The linear warm-up has no such floor, and both classes may share.
	for _, r := range []limiter.Rule{
		{Resource: "a", QPS: 2, WarmUp: 10 * time.Second, WarmUpMode: limiter.WarmUpLinear},
		{Resource: "a", QPS: 1, Burst: 1, LoadTestShare: 0.01},
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

// TestNoCheckCap: more than 64 checks on one resource all apply (there
// used to be a silent cap at 64), and every slot taken is given back.
func TestNoCheckCap(t *testing.T) {
	var rules []limiter.Rule
	for i := range 64 {
		rules = append(rules, limiter.Rule{Name: fmt.Sprintf("c%d", i), Resource: "r", Concurrency: 1})
	}
	rules = append(rules, limiter.Rule{Name: "qps", Resource: "r", QPS: 1, Burst: 1})
	l, clk := newLimiter(t, rules...)
	res := l.Resource("r")
	passed := 0
	for range 10 {
		if tok, err := res.Entry(prod); err == nil {
			passed++
			tok.Exit()
		} else if be := (*limiter.BlockError)(nil); !errors.As(err, &be) || be.Rule != "qps" {
			t.Fatalf("refused by %v, want the qps rule", err)
		}
	}
	if passed != 1 {
		t.Fatalf("%d of 10 passed, want 1 (the 65th check must apply)", passed)
	}
	// The 65th check (qps) refusing must give back the 64 concurrency slots.
	clk.Advance(time.Second)
	tok, err := res.Entry(prod)
	if err != nil {
		t.Fatalf("after a second: %v (slots leaked?)", err)
	}
	// A held token takes every concurrency slot; its exit frees them.
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("second concurrent entry passed")
	}
	tok.Exit()
	clk.Advance(time.Second)
	if tok, err := res.Entry(prod); err != nil {
		t.Fatalf("after exit: %v", err)
	} else {
		tok.Exit()
	}
}

// sentinelWarm is the documented warm-up recurrence (see
// limiter.WarmUpToken), written out independently of the limiter: the
// per-second thresholds under traffic that passes whatever the threshold
// allows, given each second's offered requests.
type sentinelWarm struct {
	q, cf, warning, maxTok, slope, cold float64
	stored                              float64
	started                             bool
}

func newSentinelWarm(q float64, w time.Duration, cf float64) *sentinelWarm {
	s := &sentinelWarm{q: q, cf: cf}
	s.warning = math.Trunc(w.Seconds() * q / (cf - 1))
	s.maxTok = s.warning + math.Trunc(2*w.Seconds()*q/(1+cf))
	s.slope = (cf - 1) / q / (s.maxTok - s.warning)
	s.cold = math.Floor(math.Floor(q) / cf)
	return s
}

// next advances one second, given the passes of the previous one, and
// returns how many of offered requests pass in the new second.
func (s *sentinelWarm) next(prev, offered int) int {
	switch {
	case !s.started:
		s.stored, s.started = s.maxTok, true
	case s.stored < s.warning || (s.stored > s.warning && float64(prev) < s.cold):
		s.stored = math.Min(s.maxTok, math.Trunc(s.stored+s.q))
	}
	s.stored = math.Max(0, s.stored-float64(prev))
	thr := s.q
	if s.stored >= s.warning {
		thr = math.Nextafter(1/((s.stored-s.warning)*s.slope+1/s.q), math.MaxFloat64)
	}
	n := 0
	for n < offered && float64(n)+1 <= thr {
		n++
	}
	return n
}

// TestWarmUpTokenFormula: the default (token) warm-up admits, second by
// second, exactly what the Sentinel/Guava formula allows, for a jump from
// 0 to 2x the limit, and goes cold again after 20 s of low traffic.
func TestWarmUpTokenFormula(t *testing.T) {
	const q = 2000
	l, clk := newLimiter(t, limiter.Rule{Resource: "w", QPS: q, WarmUp: 10 * time.Second})
	res := l.Resource("w")
	model := newSentinelWarm(q, 10*time.Second, 3)
	// second runs one second of demand at rate per second, evenly spread.
	second := func(rate int) int {
		step := time.Second / time.Duration(rate)
		return offer(res, clk, prod, step, time.Second)
	}
	prev := 0
	var got, want []int
	for range 15 {
		n := second(2 * q)
		got = append(got, n)
		prev = model.next(prev, 2*q/2) // all passes happen in the first half-second
		want = append(want, prev)
		prev = n
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("warm-up admitted\n got %v\nwant %v", got, want)
	}
	if got[0] != 666 || got[len(got)-1] != q {
		t.Fatalf("cold %d (want 666 = 2000/3), warm %d (want 2000)", got[0], got[len(got)-1])
	}
	// Low but steady traffic (100/s, under QPS/coldFactor): the bucket
	// cools, so a jump is warmed up again.
	for range 20 {
		if n := second(100); n != 100 {
			t.Fatalf("low traffic: %d of 100 passed", n)
		}
	}
	if n := second(2 * q); n > 700 {
		t.Fatalf("after 20 s of low traffic: %d passed in the first second of a jump, want a cold ~666", n)
	}
}

// TestWarmUpLinearStaysWarm documents the linear mode's difference: low
// but steady traffic keeps it warm.
func TestWarmUpLinearStaysWarm(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "w", QPS: 300, Burst: 30, WarmUp: 5 * time.Second, WarmUpMode: limiter.WarmUpLinear})
	res := l.Resource("w")
	offer(res, clk, prod, time.Millisecond, 6*time.Second)
	offer(res, clk, prod, 10*time.Millisecond, 20*time.Second) // 100/s
	if n := offer(res, clk, prod, 250*time.Microsecond, time.Second); n < 295 {
		t.Fatalf("linear warm-up after low traffic: %d passed, want the full 300", n)
	}
}

// TestWarmUpTokenLoadTestShare: load-test traffic gets its share of the
// warm-up threshold.
func TestWarmUpTokenLoadTestShare(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "w", QPS: 300, WarmUp: 2 * time.Second, LoadTestShare: 0.5})
	res := l.Resource("w")
	n := offer(res, clk, lt, time.Millisecond, time.Second)
	if n != 50 { // cold: 300/3 = 100, half of it
		t.Fatalf("cold load-test second: %d passed, want 50", n)
	}
}

// TestReloadWhileResourcesAreMade: resources made while rules change end
// up compiled against the last rules (the reload and the first use of a
// resource do not share a lock; a resource made during a reload is
// recompiled).
func TestReloadWhileResourcesAreMade(t *testing.T) {
	l, _ := newLimiter(t)
	loose := []limiter.Rule{{Name: "x", Resource: "r*", Concurrency: 1000}}
	tight := []limiter.Rule{{Name: "x", Resource: "r*", QPS: 1, Burst: 1}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			rules := loose
			if i%2 == 1 {
				rules = tight
			}
			if err := l.SetRules(rules); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var made []*limiter.Resource
	for i := range 2000 {
		made = append(made, l.Resource(fmt.Sprint("r", i)))
	}
	<-done
	for _, res := range made {
		if tok, err := res.Entry(prod); err != nil {
			t.Fatalf("%s: first entry: %v", res.Name(), err)
		} else {
			tok.Exit()
		}
		if _, err := res.Entry(prod); err == nil {
			t.Fatalf("%s: compiled against stale rules (second entry passed a QPS-1 rule)", res.Name())
		}
	}
}

// TestReloadWithOverflow: reloads racing with resources past
// WithMaxResources (the shared "_other" handle) neither deadlock nor leave
// "_other" on stale rules.
func TestReloadWithOverflow(t *testing.T) {
	l := limiter.New(limiter.WithClock(limiter.NewManualClock(t0)), limiter.WithMaxResources(10))
	loose := []limiter.Rule{{Name: "x", Resource: "*", Concurrency: 1000}}
	tight := []limiter.Rule{{Name: "x", Resource: "*", QPS: 1, Burst: 1}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			rules := loose
			if i%2 == 1 {
				rules = tight
			}
			if err := l.SetRules(rules); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var other *limiter.Resource
	for i := range 500 {
		other = l.Resource(fmt.Sprint("r", i))
	}
	<-done
	if other.Name() != "_other" {
		t.Fatalf("past the bound: %q", other.Name())
	}
	if tok, err := other.Entry(prod); err != nil {
		t.Fatal(err)
	} else {
		tok.Exit()
	}
	if _, err := other.Entry(prod); err == nil {
		t.Fatal("_other compiled against stale rules")
	}
}
