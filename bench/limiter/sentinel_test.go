package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	sentinel "github.com/alibaba/sentinel-golang/api"
	"github.com/alibaba/sentinel-golang/core/base"
	"github.com/alibaba/sentinel-golang/core/circuitbreaker"
	"github.com/alibaba/sentinel-golang/core/flow"
	"github.com/alibaba/sentinel-golang/core/isolation"
	"github.com/alibaba/sentinel-golang/util"

	"github.com/shadowlane/shadowlane/limiter"
)

// These tests drive shadowlane's limiter and sentinel-golang v1.0.4 side by
// side on one fake clock with the same traffic, and compare what each
// admitted, where shadowlane claims Sentinel's semantics (see the table
// in limiter/doc.go). sentinel-golang is process-global: the tests share
// one clock and never run in parallel.

// fakeClock is both a limiter.Clock and sentinel's util.Clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(d time.Duration)     { c.Advance(d) }
func (c *fakeClock) CurrentTimeMillis() uint64 { return uint64(c.Now().UnixMilli()) }
func (c *fakeClock) CurrentTimeNano() uint64   { return uint64(c.Now().UnixNano()) }

// limiterClock adapts fakeClock to limiter.Clock (whose Sleep takes a ctx).
type limiterClock struct{ *fakeClock }

func (c limiterClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

var (
	sideMu    sync.Mutex
	sideStart int64 = 2_000_000_000 // each test starts later, so sentinel's global statistics never see time go back
)

// sideBySide installs a fake clock at a whole second, for sentinel and
// for a new limiter with rules, and returns both.
func sideBySide(t *testing.T, rules ...limiter.Rule) (*fakeClock, *limiter.Limiter) {
	t.Helper()
	sideMu.Lock()
	t.Cleanup(sideMu.Unlock)
	if err := sentinelInit(); err != nil {
		t.Fatal(err)
	}
	// Far from the real clock, and a new second each test, so no state of
	// an earlier test (sentinel's statistics are global) is in a window.
	sideStart += 1000
	clk := &fakeClock{now: time.Unix(sideStart, 0)}
	util.SetClock(clk)
	t.Cleanup(func() { util.SetClock(util.NewRealClock()) })
	l := limiter.New(limiter.WithClock(limiterClock{clk}))
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return clk, l
}

var prod = context.Background()

// perSecond runs d of traffic, one request every step, through both and
// returns the admitted count per second of each.
func perSecond(clk *fakeClock, res *limiter.Resource, name string, step, d time.Duration) (ours, theirs []int) {
	per := int(time.Second / step)
	for i := range int(d / step) {
		if i%per == 0 {
			ours, theirs = append(ours, 0), append(theirs, 0)
		}
		if tok, err := res.Entry(prod); err == nil {
			ours[len(ours)-1]++
			tok.Exit()
		}
		if e, be := sentinel.Entry(name, sentinel.WithTrafficType(base.Inbound)); be == nil {
			theirs[len(theirs)-1]++
			e.Exit()
		}
		clk.Advance(step)
	}
	return ours, theirs
}

func same(t *testing.T, what string, ours, theirs []int) {
	t.Helper()
	if fmt.Sprint(ours) != fmt.Sprint(theirs) {
		t.Fatalf("%s: admitted per second differ\nshadowlane %v\nsentinel   %v", what, ours, theirs)
	}
	t.Logf("%s: both admitted %v", what, ours)
}

// TestSideBySideQPS: a plain QPS rule (burst 1) and Sentinel's direct
// reject rule admit the same count every second under over-limit load.
func TestSideBySideQPS(t *testing.T) {
	const name = "side-qps"
	clk, l := sideBySide(t, limiter.Rule{Resource: name, QPS: 100, Burst: 1})
	if _, err := flow.LoadRulesOfResource(name, []*flow.Rule{{Resource: name, TokenCalculateStrategy: flow.Direct,
		ControlBehavior: flow.Reject, Threshold: 100, StatIntervalInMs: 1000}}); err != nil {
		t.Fatal(err)
	}
	ours, theirs := perSecond(clk, l.Resource(name), name, time.Millisecond, 5*time.Second)
	same(t, "qps 100 under 1000/s", ours, theirs)
}

// TestSideBySideWarmUp: the token warm-up (the default mode) admits what
// Sentinel's WarmUp strategy admits, second by second: a jump from 0 to
// 2x a 2000/s limit, 20 s of low traffic (Sentinel cools, so do we), and
// a second jump.
func TestSideBySideWarmUp(t *testing.T) {
	const name = "side-warm"
	clk, l := sideBySide(t, limiter.Rule{Resource: name, QPS: 2000, WarmUp: 10 * time.Second, ColdFactor: 3})
	if _, err := flow.LoadRulesOfResource(name, []*flow.Rule{{Resource: name, TokenCalculateStrategy: flow.WarmUp,
		ControlBehavior: flow.Reject, Threshold: 2000, WarmUpPeriodSec: 10, WarmUpColdFactor: 3, StatIntervalInMs: 1000}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource(name)
	ours, theirs := perSecond(clk, res, name, 250*time.Microsecond, 15*time.Second)
	same(t, "jump to 4000/s", ours, theirs)
	ours, theirs = perSecond(clk, res, name, 10*time.Millisecond, 20*time.Second)
	same(t, "20 s at 100/s", ours, theirs)
	ours, theirs = perSecond(clk, res, name, 250*time.Microsecond, 6*time.Second)
	same(t, "second jump", ours, theirs)
	if ours[0] > 700 {
		t.Fatalf("second jump starts at %d/s: not cold again", ours[0])
	}
}

// TestSideBySideConcurrency: a concurrency rule and Sentinel's isolation
// rule admit the same calls when calls start and finish in the same order.
func TestSideBySideConcurrency(t *testing.T) {
	const name = "side-conc"
	clk, l := sideBySide(t, limiter.Rule{Resource: name, Concurrency: 3})
	if _, err := isolation.LoadRulesOfResource(name, []*isolation.Rule{{Resource: name, MetricType: isolation.Concurrency, Threshold: 3}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource(name)
	var ourHeld []limiter.Token
	var theirHeld []*base.SentinelEntry
	var ours, theirs []bool
	// Pattern: start 1-3 calls, finish 0-2 of the oldest, repeat.
	for i := range 200 {
		for range 1 + i%3 {
			tok, err := res.Entry(prod)
			ours = append(ours, err == nil)
			if err == nil {
				ourHeld = append(ourHeld, tok)
			}
			e, be := sentinel.Entry(name, sentinel.WithTrafficType(base.Inbound))
			theirs = append(theirs, be == nil)
			if be == nil {
				theirHeld = append(theirHeld, e)
			}
		}
		for range (i * 7) % 3 {
			if len(ourHeld) > 0 {
				ourHeld[0].Exit()
				ourHeld = ourHeld[1:]
			}
			if len(theirHeld) > 0 {
				theirHeld[0].Exit()
				theirHeld = theirHeld[1:]
			}
		}
		clk.Advance(time.Millisecond)
	}
	if fmt.Sprint(ours) != fmt.Sprint(theirs) {
		t.Fatalf("admitted calls differ\nshadowlane %v\nsentinel   %v", ours, theirs)
	}
}

var errSide = errors.New("failed")

// TestSideBySideErrorRatioBreaker: the error-ratio breaker trips, refuses,
// probes and closes on the same calls as Sentinel's, including a trip on
// the success that brings the window to MinRequests.
func TestSideBySideErrorRatioBreaker(t *testing.T) {
	const name = "side-cb"
	clk, l := sideBySide(t, limiter.Rule{Resource: name, Breaker: &limiter.BreakerRule{Strategy: limiter.ErrorRatio,
		Threshold: 0.5, MinRequests: 4, Window: 10 * time.Second, OpenFor: 2 * time.Second, Probes: 1}})
	if _, err := circuitbreaker.LoadRulesOfResource(name, []*circuitbreaker.Rule{{Resource: name, Strategy: circuitbreaker.ErrorRatio,
		RetryTimeoutMs: 2000, MinRequestAmount: 4, StatIntervalMs: 10000, StatSlidingWindowBucketCount: 10, Threshold: 0.5, ProbeNum: 1}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource(name)
	// Outcomes by call index: two failures then successes (trips on the
	// 4th completion, a success), then failures and successes mixed.
	fails := func(i int) bool { return i < 2 || (i >= 10 && i%3 == 0) || (i >= 40 && i%2 == 0) }
	var ours, theirs []string
	for i := range 60 {
		var err error
		if fails(i) {
			err = errSide
		}
		if tok, berr := res.Entry(prod); berr != nil {
			ours = append(ours, "B")
		} else {
			ours = append(ours, map[bool]string{true: "E", false: "S"}[err != nil])
			tok.ExitErr(err)
		}
		if e, be := sentinel.Entry(name, sentinel.WithTrafficType(base.Inbound)); be != nil {
			theirs = append(theirs, "B")
		} else {
			theirs = append(theirs, map[bool]string{true: "E", false: "S"}[err != nil])
			if err != nil {
				sentinel.TraceError(e, err)
			}
			e.Exit()
		}
		clk.Advance(300 * time.Millisecond)
	}
	if fmt.Sprint(ours) != fmt.Sprint(theirs) {
		t.Fatalf("calls differ (S/E admitted, B blocked)\nshadowlane %v\nsentinel   %v", ours, theirs)
	}
	t.Logf("both: %v", ours)
}

// TestSideBySideSlowRatioBreaker: the slow-ratio breaker trips, refuses,
// probes and closes on the same calls as Sentinel's SlowRequestRatio.
func TestSideBySideSlowRatioBreaker(t *testing.T) {
	const name = "side-slow"
	clk, l := sideBySide(t, limiter.Rule{Resource: name, Breaker: &limiter.BreakerRule{Strategy: limiter.SlowRatio,
		SlowCall: 50 * time.Millisecond, Threshold: 0.5, MinRequests: 5, Window: 10 * time.Second, OpenFor: 3 * time.Second, Probes: 1}})
	if _, err := circuitbreaker.LoadRulesOfResource(name, []*circuitbreaker.Rule{{Resource: name, Strategy: circuitbreaker.SlowRequestRatio,
		RetryTimeoutMs: 3000, MinRequestAmount: 5, StatIntervalMs: 10000, StatSlidingWindowBucketCount: 10, MaxAllowedRtMs: 50, Threshold: 0.5, ProbeNum: 1}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource(name)
	slow := func(i int) bool { return (i >= 3 && i < 8) || (i >= 30 && i%4 != 0) }
	var ours, theirs []string
	for i := range 60 {
		rt := 10 * time.Millisecond
		if slow(i) {
			rt = 80 * time.Millisecond
		}
		tok, berr := res.Entry(prod)
		e, be := sentinel.Entry(name, sentinel.WithTrafficType(base.Inbound))
		clk.Advance(rt)
		if berr != nil {
			ours = append(ours, "B")
		} else {
			ours = append(ours, map[bool]string{true: "L", false: "F"}[slow(i)])
			tok.Exit()
		}
		if be != nil {
			theirs = append(theirs, "B")
		} else {
			theirs = append(theirs, map[bool]string{true: "L", false: "F"}[slow(i)])
			e.Exit()
		}
		clk.Advance(200 * time.Millisecond)
	}
	if fmt.Sprint(ours) != fmt.Sprint(theirs) {
		t.Fatalf("calls differ (F fast, L slow, B blocked)\nshadowlane %v\nsentinel   %v", ours, theirs)
	}
	t.Logf("both: %v", ours)
}

// TestSideBySideQueueing: a rate rule with Burst 1 and MaxWait paces
// exactly as Sentinel's Throttling behaviour. Each side has its own clock
// here, because a queued caller sleeps (advancing only its own time); the
// driver advances both by the same step between requests.
func TestSideBySideQueueing(t *testing.T) {
	const name = "side-queue"
	sclk, _ := sideBySide(t)
	oclk := &fakeClock{now: sclk.Now()}
	l := limiter.New(limiter.WithClock(limiterClock{oclk}))
	if err := l.SetRules([]limiter.Rule{{Resource: name, QPS: 50, Burst: 1, MaxWait: 8 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if _, err := flow.LoadRulesOfResource(name, []*flow.Rule{{Resource: name, TokenCalculateStrategy: flow.Direct,
		ControlBehavior: flow.Throttling, Threshold: 50, MaxQueueingTimeMs: 8, StatIntervalInMs: 1000}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource(name)
	var ours, theirs []string
	outcome := func(ok bool, waited time.Duration) string {
		if !ok {
			return "B"
		}
		return fmt.Sprint(waited.Milliseconds())
	}
	for i := range 400 {
		// Requests 5, 9, 4 and 30 ms apart (interval 20 ms, wait at most
		// 8 ms): some pass at once, some wait, some are refused.
		step := []time.Duration{5, 9, 4, 30, 2, 15}[i%6] * time.Millisecond
		before := oclk.Now()
		tok, err := res.Entry(prod)
		ours = append(ours, outcome(err == nil, oclk.Now().Sub(before)))
		if err == nil {
			tok.Exit()
		}
		before = sclk.Now()
		e, be := sentinel.Entry(name, sentinel.WithTrafficType(base.Inbound))
		theirs = append(theirs, outcome(be == nil, sclk.Now().Sub(before)))
		if be == nil {
			e.Exit()
		}
		oclk.Advance(step)
		sclk.Advance(step)
	}
	if fmt.Sprint(ours) != fmt.Sprint(theirs) {
		t.Fatalf("queueing differs (ms waited, B blocked)\nshadowlane %v\nsentinel   %v", ours, theirs)
	}
	if !oclk.Now().Equal(sclk.Now()) {
		t.Fatalf("clocks drifted apart: %v vs %v", oclk.Now(), sclk.Now())
	}
	counts := map[string]int{}
	for _, o := range ours {
		counts[o]++
	}
	if counts["B"] == 0 || counts["0"] == 0 || len(counts) < 3 {
		t.Fatalf("traffic did not exercise pass, wait and refuse: %v", counts)
	}
	t.Logf("both: %v (outcome counts %v)", ours[:24], counts)
}
