package slredis_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/shadow"
)

func testDataRT(t *testing.T, action string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "redis-test", TestData: shadowlane.TestDataConfig{
		Action:       action,
		Prefixes:     []string{"lt-"},
		EmailDomains: []string{"loadtest.example"},
		IDRanges:     []shadowlane.IDRange{{Min: 9_000_000_000, Max: 9_099_999_999}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// TestLostMarkGuardRealRedis: with testData configured, an unmarked command
// (a handler that dropped its context) whose key or value is load-test data
// never reaches production; read back with a plain client. A marked one
// goes to the shadow key; production data passes; alert lets it through.
func TestLostMarkGuardRealRedis(t *testing.T) {
	rt := testDataRT(t, "")
	hooked, bare, ns := realRedis(t, slredis.WithRuntime(rt))
	ctx := context.Background()
	for i, err := range []error{
		hooked.Set(ctx, ns+"cart:lt-1", "x", 0).Err(),
		hooked.Set(ctx, ns+"user:9000000001", "x", 0).Err(),
		hooked.HSet(ctx, ns+"profile:1", "email", "a@loadtest.example").Err(),
		hooked.Get(ctx, ns+"cart:lt-1").Err(),
	} {
		if !errors.Is(err, shadow.ErrLostMark) {
			t.Errorf("command %d: err = %v, want ErrLostMark", i, err)
		}
	}
	_, err := hooked.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ns+"ok", "1", 0)
		p.Set(ctx, ns+"cart:lt-2", "x", 0)
		return nil
	})
	if !errors.Is(err, shadow.ErrLostMark) {
		t.Fatalf("pipeline: %v", err)
	}
	if keys, _ := bare.Keys(ctx, ns+"*").Result(); len(keys) != 0 {
		t.Fatalf("production holds %v", keys)
	}
	if got := rt.Stats().LostMarks["redis"]; got != 5 {
		t.Fatalf("LostMarks = %v, want redis: 5", rt.Stats().LostMarks)
	}
	if err := hooked.Set(ctx, ns+"cart:1", "p@shop.example", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := hooked.Set(marked, ns+"cart:lt-3", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := bare.Exists(ctx, ns+"cart:1", "shadow:"+ns+"cart:lt-3").Result(); n != 2 {
		t.Fatalf("production + shadow keys: %d, want 2", n)
	}
	if n, _ := bare.Exists(ctx, ns+"cart:lt-3").Result(); n != 0 {
		t.Fatal("marked key reached production")
	}

	alert := testDataRT(t, "alert")
	h2, bare2, ns2 := realRedis(t, slredis.WithRuntime(alert))
	if err := h2.Set(ctx, ns2+"cart:lt-4", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := bare2.Exists(ctx, ns2+"cart:lt-4").Result(); n != 1 {
		t.Fatal("alert: the leak did not happen")
	}
	if got := alert.Stats().LostMarks["redis"]; got != 1 {
		t.Fatalf("alert LostMarks = %v", alert.Stats().LostMarks)
	}
}
