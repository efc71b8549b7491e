package slredis_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
)

// limited returns a client on the real Redis with the shadow hook and a
// limit hook on l, a bare client, and the test's key namespace.
func limited(t *testing.T, l *limiter.Limiter) (*redis.Client, *redis.Client, string) {
	t.Helper()
	hooked, bare, ns := realRedis(t)
	hooked.AddHook(slredis.NewLimitHook(slredis.WithLimiter(l)))
	return hooked, bare, ns
}

func newLimiter(t *testing.T, rules ...limiter.Rule) (*limiter.Limiter, *limiter.ManualClock) {
	t.Helper()
	clk := limiter.NewManualClock(time.Unix(1000, 0))
	l := limiter.New(limiter.WithClock(clk))
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return l, clk
}

var loadTest = propagation.With(context.Background(), propagation.Mark{Run: "lim-1"})

// Load-test commands are held to their own budget; a refused command is
// not sent (the server's counter proves it) and production is untouched.
func TestLimitHookBudget(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Name: "lt-incr", Resource: "redis:INCR", Class: limiter.ClassLoadTest, QPS: 1, Burst: 2})
	rdb, bare, ns := limited(t, l)
	ctx := context.Background()
	key := ns + "n"
	var blocked *limiter.BlockError
	for i := range 5 {
		err := rdb.Incr(loadTest, key).Err()
		if i < 2 && err != nil {
			t.Fatalf("load-test INCR %d: %v", i, err)
		}
		if i >= 2 {
			if !errors.As(err, &blocked) || !errors.Is(err, limiter.ErrBlocked) {
				t.Fatalf("load-test INCR %d: %v, want a *limiter.BlockError", i, err)
			}
		}
	}
	if blocked.Resource != "redis:INCR" || blocked.Rule != "lt-incr" || blocked.Reason != limiter.ReasonQPS || blocked.Class != "loadtest" || blocked.RetryAfter <= 0 {
		t.Errorf("block %+v", blocked)
	}
	for range 5 {
		if err := rdb.Incr(ctx, key).Err(); err != nil {
			t.Fatalf("production INCR: %v", err)
		}
	}
	if got, _ := bare.Get(ctx, "shadow:"+key).Int(); got != 2 {
		t.Errorf("shadow counter %d, want 2 (refused commands must not be sent)", got)
	}
	if got, _ := bare.Get(ctx, key).Int(); got != 5 {
		t.Errorf("production counter %d, want 5", got)
	}
	clk.Advance(time.Second)
	if err := rdb.Incr(loadTest, key).Err(); err != nil {
		t.Errorf("after refill: %v", err)
	}
}

// A pipeline whose commands are not all admitted sends none of them.
func TestLimitHookPipeline(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Resource: "redis:SET", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1})
	rdb, bare, ns := limited(t, l)
	ctx := context.Background()
	cmds, err := rdb.Pipelined(loadTest, func(p redis.Pipeliner) error {
		p.Get(loadTest, ns+"x")
		p.Set(loadTest, ns+"a", 1, 0)
		p.Set(loadTest, ns+"b", 1, 0)
		return nil
	})
	if !errors.Is(err, limiter.ErrBlocked) {
		t.Fatalf("pipeline: %v, want a refusal", err)
	}
	for _, c := range cmds {
		if !errors.Is(c.Err(), limiter.ErrBlocked) {
			t.Errorf("%s: %v, want the refusal", c.Name(), c.Err())
		}
	}
	if n, _ := bare.Exists(ctx, "shadow:"+ns+"a", "shadow:"+ns+"b", ns+"a", ns+"b").Result(); n != 0 {
		t.Errorf("%d keys written by a refused pipeline", n)
	}
	// Production pipelines and transactions pass.
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ns+"a", 1, 0)
		p.Set(ctx, ns+"b", 1, 0)
		return nil
	}); err != nil {
		t.Errorf("production transaction: %v", err)
	}
	if n, _ := bare.Exists(ctx, ns+"a", ns+"b").Result(); n != 2 {
		t.Errorf("production transaction wrote %d keys, want 2", n)
	}
}

// Failing calls (a dead server) open a breaker; while open, commands are
// refused without dialing; after the open interval a probe to a healthy
// server closes it.
func TestLimitHookBreaker(t *testing.T) {
	l, clk := newLimiter(t, limiter.Rule{Name: "br", Resource: "redis:*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorCount, Threshold: 2, MinRequests: 2, OpenFor: time.Second}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	dials := 0
	rdb := redis.NewClient(&redis.Options{Addr: dead, MaxRetries: -1, DialTimeout: time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials++
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}})
	t.Cleanup(func() { rdb.Close() })
	rdb.AddHook(slredis.NewLimitHook(slredis.WithLimiter(l)))
	ctx := context.Background()
	for range 2 {
		if err := rdb.Get(ctx, "k").Err(); err == nil || errors.Is(err, limiter.ErrBlocked) {
			t.Fatalf("GET on a dead server: %v", err)
		}
	}
	d := dials
	if st, _ := l.BreakerState("redis:GET", "br"); st != limiter.Open {
		t.Fatalf("breaker %v after 2 failures, want open", st)
	}
	err = rdb.Get(ctx, "k").Err()
	if !errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatalf("GET while open: %v, want ErrCircuitOpen", err)
	}
	if dials != d {
		t.Errorf("a refused command dialed the server")
	}

	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	live := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { live.Close() })
	live.AddHook(slredis.NewLimitHook(slredis.WithLimiter(l))) // same limiter, same breaker
	if err := live.Get(ctx, uniq(t)+"k").Err(); !errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatalf("GET while open: %v, want ErrCircuitOpen", err)
	}
	clk.Advance(time.Second)
	if err := live.Get(ctx, uniq(t)+"k").Err(); err != redis.Nil {
		t.Fatalf("probe: %v, want redis.Nil (a miss is not a failure)", err)
	}
	if st, _ := l.BreakerState("redis:GET", "br"); st != limiter.Closed {
		t.Errorf("breaker %v after a good probe, want closed", st)
	}
}

// Command names from the application are bounded: beyond the cache, they
// share one resource.
func TestLimitHookResourceNames(t *testing.T) {
	l, _ := newLimiter(t)
	h := slredis.NewLimitHook(slredis.WithLimiter(l))
	next := h.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	ctx := context.Background()
	for _, name := range []string{"get", "GET", "Set"} {
		if err := next(ctx, redis.NewCmd(ctx, name, "k")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 600 {
		next(ctx, redis.NewCmd(ctx, "x"+string(rune('a'+i%26))+string(rune('a'+i/26)), "k"))
	}
	names := map[string]bool{}
	for _, s := range l.Totals() {
		names[s.Resource] = true
	}
	for _, want := range []string{"redis:GET", "redis:SET", "redis:_other"} {
		if !names[want] {
			t.Errorf("no resource %q in %v", want, names)
		}
	}
	if len(names) > 513 {
		t.Errorf("%d resources, want at most 512 + _other", len(names))
	}
}

// An admitted command costs no allocation.
func TestLimitHookAllocs(t *testing.T) {
	l, _ := newLimiter(t, limiter.Rule{Resource: "redis:*", QPS: 1e9, Concurrency: 1000})
	h := slredis.NewLimitHook(slredis.WithLimiter(l))
	next := h.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	ctx := context.Background()
	cmd := redis.NewStringCmd(ctx, "get", "k")
	if n := testing.AllocsPerRun(1000, func() { next(ctx, cmd) }); n != 0 {
		t.Errorf("%v allocs per admitted command, want 0", n)
	}
}
