package slredis_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// The hook counts its decisions in its runtime's evidence, per run: the
// counts match the commands sent, two runs are kept apart, production
// commands leave no evidence, and another runtime sees nothing.
func TestRunEvidence(t *testing.T) {
	srv := miniredis.RunT(t)
	rt, err := shadowlane.New(shadowlane.Config{Service: "carts", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	other, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if _, err := slredis.Instrument(rdb, slredis.WithRuntime(rt)); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	r1 := propagation.With(ctx, propagation.Mark{Run: "ev-r1"})
	r2 := propagation.With(ctx, propagation.Mark{Run: "ev-r2"})
	for range 5 {
		if err := rdb.Set(r1, "cart:1", "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		rdb.Get(r1, "cart:1")
	}
	rdb.Set(r2, "cart:2", "y", 0)
	if err := rdb.FlushDB(r1).Err(); err == nil {
		t.Fatal("FLUSHDB under a mark went through")
	}
	pipe := rdb.Pipeline()
	pipe.Set(r2, "cart:3", "z", 0)
	pipe.Incr(r2, "n")
	if _, err := pipe.Exec(r2); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "cart:9", "prod", 0) // production: no evidence
	rdb.Get(ctx, "shadow:cart:1")     // production touching a shadow key: a guard, not run evidence

	count := func(s shadowlane.RunStatus, target, decision string) int64 {
		for _, d := range s.Decisions {
			if d.Store == slredis.Store && d.Target == target && d.Decision == decision {
				return d.N
			}
		}
		return 0
	}
	s1, s2 := rt.RunStatus("ev-r1"), rt.RunStatus("ev-r2")
	if !s1.Known || count(s1, "SET", "redirect") != 5 || count(s1, "GET", "redirect") != 3 || count(s1, "FLUSHDB", "block") != 1 || len(s1.Decisions) != 3 {
		t.Fatalf("run 1: %+v", s1.Decisions)
	}
	if count(s2, "SET", "redirect") != 2 || count(s2, "INCR", "redirect") != 1 || len(s2.Decisions) != 2 {
		t.Fatalf("run 2: %+v", s2.Decisions)
	}
	if g := rt.Decisions().Total(slredis.Store, shadow.Guard); g != 1 {
		t.Fatalf("guards %d, want 1", g)
	}
	if len(rt.Runs()) != 2 {
		t.Fatalf("runs %q", rt.Runs())
	}
	if other.RunStatus("ev-r1").Known || other.Decisions().Total(slredis.Store, shadow.Redirect) != 0 {
		t.Fatal("another runtime saw the hook's decisions")
	}
}

// On a real Redis, the hook counts the errors of marked commands in the
// run's evidence by reason (the reply's code, a timeout), in pipelines per
// failed command; redis.Nil, the hook's refusals and production errors
// count none.
func TestRunErrorsRedis(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	rt, err := shadowlane.New(shadowlane.Config{Service: "carts", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if _, err := slredis.Instrument(rdb, slredis.WithRuntime(rt)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := propagation.With(ctx, propagation.Mark{Run: "rediserr-r1"})
	key := "evidence12:" + t.Name()
	defer rdb.Del(run, key)
	defer rdb.Del(ctx, key)
	if err := rdb.Set(run, key, "not a list", 0).Err(); err != nil {
		testenv.Missing(t, "Redis", addr, err)
	}
	for range 3 {
		if err := rdb.LPush(run, key, "x").Err(); err == nil {
			t.Fatal("LPUSH on a string succeeded")
		}
	}
	if err := rdb.Get(run, key+":absent").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET absent: %v", err)
	}
	if err := rdb.FlushDB(run).Err(); err == nil { // refused: a decision, not an error
		t.Fatal("FLUSHDB under a mark went through")
	}
	pipe := rdb.Pipeline()
	pipe.Incr(run, key) // a string that is not a number: ERR
	pipe.Get(run, key)
	pipe.LPush(run, key, "y") // WRONGTYPE
	if _, err := pipe.Exec(run); err == nil {
		t.Fatal("pipeline without errors")
	}
	// A deadline that has passed: the command never reaches the server.
	late, cancel := context.WithTimeout(run, -time.Second)
	defer cancel()
	if err := rdb.Get(late, key).Err(); err == nil {
		t.Fatal("GET after the deadline succeeded")
	}
	// Production: its errors are its own.
	rdb.Set(ctx, key, "prod", 0)
	if err := rdb.LPush(ctx, key, "x").Err(); err == nil {
		t.Fatal("production LPUSH on a string succeeded")
	}

	want := []shadowlane.RunErrorRows{{Reason: "redis ERR", N: 1}, {Reason: "redis WRONGTYPE", N: 4}, {Reason: "redis timeout", N: 1}}
	if got := rt.RunStatus("rediserr-r1").Errors; !slices.Equal(got, want) {
		t.Fatalf("errors %+v, want %+v", got, want)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{redis.ErrPoolTimeout, "redis pool timeout"},
		{redis.ErrClosed, "redis closed"},
		{redis.TxFailedErr, "redis tx failed"},
		{context.Canceled, "redis canceled"},
		{errors.New("weird"), "redis error"},
	} {
		if got := slredis.ErrorReason(c.err); got != c.want {
			t.Errorf("ErrorReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
