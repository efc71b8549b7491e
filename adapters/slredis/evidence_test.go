package slredis_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
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
