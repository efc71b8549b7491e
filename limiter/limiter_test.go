package limiter_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func newLimiter(t *testing.T, rules ...limiter.Rule) (*limiter.Limiter, *limiter.ManualClock) {
	t.Helper()
	clk := limiter.NewManualClock(t0)
	l := limiter.New(limiter.WithClock(clk))
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return l, clk
}

var (
	prod = context.Background()
	lt   = propagation.With(context.Background(), propagation.Mark{Run: "r1"})
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"GET /orders/:id", "GET /orders/:id", true},
		{"GET /orders/:id", "GET /orders/42", true},
		{"GET /orders/:id", "GET /orders/", false},
		{"GET /orders/:id", "GET /orders/42/items", false},
		{"GET /orders/:id", "POST /orders/42", false},
		{"/order.v1.Orders/Create", "/order.v1.Orders/Create", true},
		{"/order.v1.Orders/*", "/order.v1.Orders/Create", true},
		{"/order.v1.Orders/*", "/order.v1.Users/Create", false},
		{"/order.v1.Orders/*", "/order.v1.Orders", false},
		{"redis:*", "redis:GET", true},
		{"redis:[GS]ET", "redis:SET", true},
		{"redis:[GS]ET", "redis:DEL", false},
		{"redis:*", "sql:users", false},
		{"*", "anything/at/all", true},
		{"GET /a/*", "GET /a/b/c", true},
	} {
		if got := limiter.Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestSetRulesValidatesAndKeepsOld(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Resource: "a", QPS: 1, Burst: 1})
	bad := []limiter.Rule{
		{Resource: "", QPS: 1},
		{Resource: "b", QPS: -1},
		{Resource: "c", Class: "staging", QPS: 1},
		{Resource: "d"},
		{Resource: "e", Env: "bad env!", QPS: 1},
		{Resource: "f", Concurrency: 1, MaxWait: time.Second},
		{Resource: "g[", QPS: 1},
		{Resource: "h", Breaker: &limiter.BreakerRule{Strategy: limiter.ErrorRatio, Threshold: 2}},
		{Resource: "a", QPS: 1},
		{Resource: "a", QPS: 2},
	}
	err := l.SetRules(bad)
	if !errors.Is(err, limiter.ErrInvalidRule) {
		t.Fatalf("err = %v, want ErrInvalidRule", err)
	}
	for _, want := range []string{"resource: empty", "qps: -1", `class: "staging"`, "sets no limit", `env: "bad env!"`, "maxWait: needs a qps limit", "resource: pattern", "breaker.threshold: 2: a ratio must be", "name: same name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	var re *limiter.RuleError
	if !errors.As(err, &re) || re.Rule != "" || re.Field != "resource" {
		t.Errorf("first problem %+v, want a *RuleError on field resource", re)
	}
	if r := l.Rules(); len(r) != 1 || r[0].Resource != "a" {
		t.Fatalf("rules changed after a failed reload: %+v", r)
	}
	res := l.Resource("a")
	if _, err := res.Entry(prod); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Entry(prod); !errors.Is(err, limiter.ErrBlocked) {
		t.Fatalf("old rule not in force after failed reload: %v", err)
	}
}

func TestQPSBurstAndRefill(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Name: "orders", Resource: "GET /orders/:id", QPS: 10, Burst: 5})
	res := l.Resource("GET /orders/:id")
	for i := range 5 {
		tok, err := res.Entry(prod)
		if err != nil {
			t.Fatalf("request %d of the burst: %v", i, err)
		}
		tok.Exit()
	}
	_, err := res.Entry(prod)
	var be *limiter.BlockError
	if !errors.As(err, &be) || !errors.Is(err, limiter.ErrBlocked) {
		t.Fatalf("6th request: err = %v, want *BlockError", err)
	}
	if be.Rule != "orders" || be.Resource != "GET /orders/:id" || be.Reason != limiter.ReasonQPS || be.Limit != 10 || be.Class != "production" {
		t.Fatalf("block error = %+v", be)
	}
	if be.RetryAfter != 100*time.Millisecond || be.Value != 6 {
		t.Fatalf("retry after %v value %v, want 100ms and 6", be.RetryAfter, be.Value)
	}
	if errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatal("a qps block matches ErrCircuitOpen")
	}
	clk.Advance(99 * time.Millisecond)
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("passed before the retry hint")
	}
	clk.Advance(time.Millisecond)
	if _, err := res.Entry(prod); err != nil {
		t.Fatalf("after the retry hint: %v", err)
	}
	// Over 10 s of steady demand at 1 request/ms exactly 100 pass (+ nothing
	// saved: the bucket was empty).
	passed := 0
	for range 10000 {
		clk.Advance(time.Millisecond)
		if tok, err := res.Entry(prod); err == nil {
			passed++
			tok.Exit()
		}
	}
	if passed != 100 {
		t.Fatalf("passed %d in 10 s at 10 QPS, want 100", passed)
	}
}

func TestConcurrency(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Resource: "redis:*", Concurrency: 2})
	get, set := l.Resource("redis:GET"), l.Resource("redis:SET")
	a, err1 := get.Entry(prod)
	b, err2 := get.Entry(prod)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	_, err := get.Entry(prod)
	var be *limiter.BlockError
	if !errors.As(err, &be) || be.Reason != limiter.ReasonConcurrency || be.Value != 3 || be.Limit != 2 {
		t.Fatalf("third in flight: %v", err)
	}
	// A pattern rule limits each matching resource separately.
	if tok, err := set.Entry(prod); err != nil {
		t.Fatalf("redis:SET limited by redis:GET's slots: %v", err)
	} else {
		tok.Exit()
	}
	a.Exit()
	c, err := get.Entry(prod)
	if err != nil {
		t.Fatalf("after exit: %v", err)
	}
	b.Exit()
	c.Exit()
	if got := get.Stats().Classes[0].InFlight; got != 0 {
		t.Fatalf("in flight after all exits = %d", got)
	}
	var zero limiter.Token
	zero.Exit() // must not panic
}

func TestClassAndEnvScope(t *testing.T) {
	l, _ := newLimiter(t,
		limiter.Rule{Resource: "api", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1},
		limiter.Rule{Resource: "api", Env: "proj-42", Concurrency: 1},
	)
	res := l.Resource("api")
	for i := range 100 {
		tok, err := res.Entry(prod)
		if err != nil {
			t.Fatalf("production request %d blocked by a load-test rule: %v", i, err)
		}
		defer tok.Exit()
	}
	if _, err := res.Entry(lt); err != nil {
		t.Fatal(err)
	}
	_, err := res.Entry(lt)
	var be *limiter.BlockError
	if !errors.As(err, &be) || be.Class != "loadtest" || be.Rule != "api|loadtest" {
		t.Fatalf("second load-test request: %v", err)
	}
	env := propagation.With(context.Background(), propagation.Mark{Env: "proj-42"})
	tok, err := res.Entry(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Entry(env); err == nil {
		t.Fatal("second proj-42 request passed a concurrency-1 env rule")
	}
	other := propagation.With(context.Background(), propagation.Mark{Env: "proj-7"})
	if _, err := res.Entry(other); err != nil {
		t.Fatalf("proj-7 limited by a proj-42 rule: %v", err)
	}
	tok.Exit()
}

func TestQueueing(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "pay", QPS: 10, Burst: 1, MaxWait: 250 * time.Millisecond})
	res := l.Resource("pay")
	var waited []time.Duration
	for range 3 {
		before := clk.Now()
		tok, err := res.Entry(prod)
		if err != nil {
			t.Fatal(err)
		}
		tok.Exit()
		waited = append(waited, clk.Now().Sub(before))
	}
	// ManualClock.Sleep advances the clock, so requests are paced 100 ms apart.
	if waited[0] != 0 || waited[1] != 100*time.Millisecond || waited[2] != 100*time.Millisecond {
		t.Fatalf("waits = %v", waited)
	}
	// Reserve three slots at the same instant with a cancelled context
	// after the first: a fresh limiter shows the cap.
	l2, _ := newLimiter(t, limiter.Rule{Resource: "pay", QPS: 10, Burst: 1, MaxWait: 250 * time.Millisecond})
	r2 := l2.Resource("pay")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r2.Entry(ctx); err != nil {
		t.Fatalf("first needs no wait: %v", err)
	}
	_, err := r2.Entry(ctx)
	var be *limiter.BlockError
	if !errors.As(err, &be) || be.Reason != limiter.ReasonQueue {
		t.Fatalf("cancelled while queued: %v", err)
	}
	// The cancelled request gave its slot back: the next one waits 100 ms, not 200.
	_, err = r2.Entry(context.Background())
	if err != nil {
		t.Fatalf("after a cancelled wait: %v", err)
	}
	// Now 3 slots ahead would need a 300 ms wait > MaxWait.
	l3, _ := newLimiter(t, limiter.Rule{Resource: "pay", QPS: 10, Burst: 1, MaxWait: 250 * time.Millisecond})
	r3 := l3.Resource("pay")
	if _, err := r3.Entry(prod); err != nil {
		t.Fatal(err)
	}
	_, err = r3.Entry(ctx) // reserves +100ms, then cancelled and refunded
	if err == nil {
		t.Fatal("cancelled ctx passed")
	}
}

func TestQueueMaxWait(t *testing.T) {
	clk := limiter.NewManualClock(t0)
	// A clock whose Sleep does not advance time: every request reserves at the same instant.
	l := limiter.New(limiter.WithClock(frozen{clk}))
	if err := l.SetRules([]limiter.Rule{{Resource: "pay", QPS: 10, Burst: 1, MaxWait: 250 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource("pay")
	for i := range 3 { // waits 0, 100, 200 ms
		if _, err := res.Entry(prod); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := res.Entry(prod) // would wait 300 ms
	var be *limiter.BlockError
	if !errors.As(err, &be) || be.Reason != limiter.ReasonQueue || be.RetryAfter != 300*time.Millisecond {
		t.Fatalf("4th: %v", err)
	}
}

type frozen struct{ *limiter.ManualClock }

func (frozen) Sleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

func TestWarmUp(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Resource: "w", QPS: 300, Burst: 2, WarmUp: 10 * time.Second, WarmUpMode: limiter.WarmUpLinear})
	res := l.Resource("w")
	// count admissions in one second of demand at 1 request / 100 µs.
	second := func() int {
		n := 0
		for range 10000 {
			clk.Advance(100 * time.Microsecond)
			if tok, err := res.Entry(prod); err == nil {
				n++
				tok.Exit()
			}
		}
		return n
	}
	first := second()
	var rates []int
	for range 11 {
		rates = append(rates, second())
	}
	// Cold rate 100/s rising linearly to 300/s over 10 s: the first second
	// averages ~110, the 12th is at full rate.
	if first < 100 || first > 125 {
		t.Fatalf("first second: %d passed, want ~110 (cold)", first)
	}
	for i := 1; i < len(rates)-1; i++ {
		if rates[i] < rates[i-1]-2 {
			t.Fatalf("rate fell during warm-up: %v", rates)
		}
	}
	if last := rates[len(rates)-1]; last < 297 || last > 301 {
		t.Fatalf("after warm-up: %d passed, want 300 (rates %v)", last, rates)
	}
	// Idle for a whole warm-up period: cold again.
	clk.Advance(11 * time.Second)
	if again := second(); again > 125 {
		t.Fatalf("after idling: %d passed, want a cold rate", again)
	}
}

func TestDryRun(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Resource: "d", QPS: 1, Burst: 1, Concurrency: 1, DryRun: true})
	res := l.Resource("d")
	for i := range 10 {
		if _, err := res.Entry(prod); err != nil {
			t.Fatalf("dry-run rule blocked request %d: %v", i, err)
		}
	}
	s := res.Stats().Classes[0].Sum(time.Time{})
	// 9 over the rate and 9 over the concurrency limit.
	if s.Pass != 10 || s.DryRun != 18 || s.Blocked.Total() != 0 {
		t.Fatalf("stats = %+v, want 10 passed, 18 dry-run blocks", s)
	}
}

func TestReloadKeepsState(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Name: "c", Resource: "x", Concurrency: 1})
	res := l.Resource("x")
	tok, err := res.Entry(prod)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetRules([]limiter.Rule{{Name: "c", Resource: "x", Concurrency: 1}, {Resource: "y", QPS: 5}}); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("in-flight count lost on reload")
	}
	tok.Exit()
	if tok2, err := res.Entry(prod); err != nil {
		t.Fatalf("slot not released through the reloaded rule: %v", err)
	} else {
		tok2.Exit()
	}
	if err := l.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := res.Entry(prod); err != nil {
			t.Fatalf("rule still in force after removal: %v", err)
		}
	}
}

func TestMaxResources(t *testing.T) {
	l := limiter.New(limiter.WithMaxResources(2))
	if err := l.SetRules([]limiter.Rule{{Resource: "*", Concurrency: 1}}); err != nil {
		t.Fatal(err)
	}
	a, b, c, d := l.Resource("a"), l.Resource("b"), l.Resource("c"), l.Resource("d")
	if a == b || c != d || c.Name() != "_other" || l.Resource("a") != a {
		t.Fatal("resource handles not bounded as documented")
	}
	tok, _ := c.Entry(prod)
	if _, err := d.Entry(prod); err == nil {
		t.Fatal("overflow handle does not share its rules' state")
	}
	tok.Exit()
}

func TestEntryExitAllocs(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "GET /orders/:id", QPS: 1e9, Burst: 1e6, Concurrency: 1000}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource("GET /orders/:id")
	for _, ctx := range []context.Context{prod, lt} {
		if n := testing.AllocsPerRun(1000, func() {
			tok, err := res.Entry(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tok.ExitErr(nil)
		}); n != 0 {
			t.Fatalf("Entry+Exit allocates %v times", n)
		}
	}
}

func TestReloadRescalesRate(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Name: "r", Resource: "a", QPS: 0.1, Burst: 1})
	res := l.Resource("a")
	if _, err := res.Entry(prod); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("want a block at 0.1 QPS")
	}
	// Raising the limit takes effect at once: the one request admitted is
	// a debt of one 1 ms slot at 1000 QPS, not 10 s.
	if err := l.SetRules([]limiter.Rule{{Name: "r", Resource: "a", QPS: 1000, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Millisecond)
	if _, err := res.Entry(prod); err != nil {
		t.Fatalf("after raising the limit: %v", err)
	}
	// Lowering it keeps the debt: one request at 0.5 QPS is 2 s.
	if err := l.SetRules([]limiter.Rule{{Name: "r", Resource: "a", QPS: 0.5, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("lowering the limit forgave the past")
	}
	clk.Advance(2 * time.Second)
	if _, err := res.Entry(prod); err != nil {
		t.Fatalf("after the debt is paid: %v", err)
	}
}
