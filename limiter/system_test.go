package limiter_test

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

// TestLoadTestShareShedFirst: on a rule shared by both classes, load-test
// traffic may use only its share of the burst, so when both classes push
// past the limit production keeps its demand and load-test gets the rest.
func TestLoadTestShareShedFirst(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "api", QPS: 100, Burst: 20, LoadTestShare: 0.5})
	res := l.Resource("api")
	var p, q, asked int
	// 10 s: production asks ~60/s, load-test 400/s; the limit is 100/s.
	for i := range 40000 {
		clk.Advance(250 * time.Microsecond)
		if i%4 == 0 {
			if tok, err := res.Entry(lt); err == nil {
				q++
				tok.Exit()
			} else if !errors.Is(err, limiter.ErrBlocked) {
				t.Fatal(err)
			}
		}
		if i%67 == 0 {
			asked++
			if tok, err := res.Entry(prod); err == nil {
				p++
				tok.Exit()
			}
		}
	}
	if p != asked {
		t.Fatalf("production got %d of %d while load-test flooded (load-test got %d)", p, asked, q)
	}
	if q < 1000-asked-10 || q > 1000-asked+20 {
		t.Fatalf("load-test got %d, want the remaining ~400 of 1000", q)
	}
	// Concurrency share: 4 slots, load-test may hold 2.
	l2, _ := newLimiter(t, limiter.Rule{Resource: "api", Concurrency: 4, LoadTestShare: 0.5})
	r2 := l2.Resource("api")
	a, _ := r2.Entry(lt)
	b, _ := r2.Entry(lt)
	if _, err := r2.Entry(lt); err == nil {
		t.Fatal("load-test exceeded its concurrency share")
	}
	c, err1 := r2.Entry(prod)
	d, err2 := r2.Entry(prod)
	if err1 != nil || err2 != nil {
		t.Fatalf("production refused within the limit: %v %v", err1, err2)
	}
	for _, tok := range []limiter.Token{a, b, c, d} {
		tok.Exit()
	}
}

// TestLoadTestOwnBudget: a load-test-only rule holds load-test traffic to
// its own budget while production runs free.
func TestLoadTestOwnBudget(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "*", Class: limiter.ClassLoadTest, QPS: 50, Burst: 1})
	res := l.Resource("POST /orders")
	var p, q int
	for range 10000 { // 10 s at 1000/s of each class
		clk.Advance(time.Millisecond)
		if tok, err := res.Entry(lt); err == nil {
			q++
			tok.Exit()
		}
		if tok, err := res.Entry(prod); err == nil {
			p++
			tok.Exit()
		}
	}
	if p != 10000 || q != 500 {
		t.Fatalf("production %d (want 10000), load-test %d (want 500)", p, q)
	}
}

type fakeCPU struct{ v atomic.Uint64 }

func (f *fakeCPU) set(x float64) { f.v.Store(math.Float64bits(x)) }
func (f *fakeCPU) read() float64 { return math.Float64frombits(f.v.Load()) }

func TestSystemShedsLoadTestFirst(t *testing.T) {
	cpu := &fakeCPU{}
	clk := limiter.NewManualClock(t0)
	l := limiter.New(limiter.WithClock(clk), limiter.WithSystem(limiter.SystemRule{
		CPU: 0.8, LoadTestCPU: 0.6, Window: time.Second, SampleEvery: 100 * time.Millisecond, CPUUsage: cpu.read,
	}))
	if err := l.SystemErr(); err != nil {
		t.Fatal(err)
	}
	res := l.Resource("GET /orders/:id")
	// One second of history at low CPU: 6 requests every 10 ms, each taking
	// 10 ms: 600 completions/s at 10 ms => the process holds ~6 in flight.
	cpu.set(0.3)
	for range 100 {
		var toks []limiter.Token
		for range 5 {
			tok, err := res.Entry(prod)
			if err != nil {
				t.Fatalf("refused at low CPU: %v", err)
			}
			toks = append(toks, tok)
		}
		tok, err := res.Entry(lt)
		if err != nil {
			t.Fatalf("load-test refused at low CPU: %v", err)
		}
		toks = append(toks, tok)
		clk.Advance(10 * time.Millisecond)
		for _, tok := range toks {
			tok.Exit()
		}
	}
	// CPU between the thresholds: load-test shed, production untouched.
	cpu.set(0.7)
	clk.Advance(100 * time.Millisecond)
	_, err := res.Entry(lt)
	var be *limiter.BlockError
	if !errors.As(err, &be) || !errors.Is(err, limiter.ErrOverloaded) || be.Class != "loadtest" || be.Value != 0.7 {
		t.Fatalf("load-test at 70%% CPU: %v", err)
	}
	var held []limiter.Token
	for i := range 6 {
		tok, err := res.Entry(prod)
		if err != nil {
			t.Fatalf("production request %d refused at 70%% CPU: %v", i, err)
		}
		held = append(held, tok)
	}
	clk.Advance(10 * time.Millisecond)
	for _, tok := range held {
		tok.Exit()
	}
	held = held[:0]
	// Above the production threshold: production is held to what the
	// process completes (~5 in flight); load-test is refused outright.
	cpu.set(0.95)
	clk.Advance(100 * time.Millisecond)
	passed := 0
	for range 50 {
		tok, err := res.Entry(prod)
		if err == nil {
			passed++
			held = append(held, tok)
		} else if !errors.Is(err, limiter.ErrOverloaded) {
			t.Fatal(err)
		}
	}
	if passed < 6 || passed > 7 {
		t.Fatalf("%d production requests in flight at 95%% CPU, want ~6", passed)
	}
	if _, err := res.Entry(lt); !errors.Is(err, limiter.ErrOverloaded) {
		t.Fatalf("load-test passed at 95%% CPU: %v", err)
	}
	for _, tok := range held {
		tok.Exit()
	}
	st := res.Stats().Classes
	if st[0].Sum(time.Time{}).Blocked.System == 0 || st[1].Sum(time.Time{}).Blocked.System != 2 {
		t.Fatalf("system blocks not counted: %+v", st)
	}
	// Pressure gone (and cool-off over): everything passes again.
	cpu.set(0.2)
	clk.Advance(2 * time.Second)
	for _, ctx := range []context.Context{prod, lt} {
		if tok, err := res.Entry(ctx); err != nil {
			t.Fatalf("refused after pressure: %v", err)
		} else {
			tok.Exit()
		}
	}
}

func TestSystemRuleValidation(t *testing.T) {
	l := limiter.New(limiter.WithSystem(limiter.SystemRule{CPU: 0.5, LoadTestCPU: 0.9}))
	if err := l.SystemErr(); !errors.Is(err, limiter.ErrInvalidRule) {
		t.Fatalf("load-test threshold above production accepted: %v", err)
	}
}

func TestCgroupCPU(t *testing.T) {
	read := limiter.CgroupCPU()
	read()
	end := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(end) { // burn CPU so the reading is above zero
	}
	if u := read(); u <= 0 || u > 1 {
		t.Fatalf("cpu usage after 200 ms of spinning = %v, want (0, 1]", u)
	}
}
