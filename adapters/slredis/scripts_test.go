package slredis_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/shadow"
)

// TestScriptsRefusedFromConfigRealRedis: a marked EVAL that writes a key
// it did not declare writes production while scripts are allowed (the
// documented hazard); with redis.scripts: refuse in the runtime's config
// it is refused and writes nothing, and a config reload switches at once.
// Judged by a plain client.
func TestScriptsRefusedFromConfigRealRedis(t *testing.T) {
	_, bare, ns := realRedis(t)
	cfg := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Redis: shadowlane.RedisConfig{Scripts: "refuse"}}
	rt, err := shadowlane.New(cfg, shadowlane.WithoutDefault())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rdb := redis.NewClient(&redis.Options{Addr: bare.Options().Addr})
	defer rdb.Close()
	slredis.Instrument(rdb, slredis.WithRuntime(rt))
	ctx := context.Background()
	script := "redis.call('set', KEYS[1], 'x'); return redis.call('set', ARGV[1], 'leak')"
	undeclared := ns + "undeclared"

	err = rdb.Eval(marked, script, []string{ns + "declared"}, undeclared).Err()
	wantShadowErr(t, err, shadow.ErrBlocked)
	if n := bare.Exists(ctx, undeclared, ns+"declared", "shadow:"+ns+"declared").Val(); n != 0 {
		t.Fatalf("refused script wrote %d keys", n)
	}
	wantShadowErr(t, rdb.Do(marked, "fcall", "f", 1, ns+"k").Err(), shadow.ErrBlocked)
	// Production scripts are not affected.
	if err := rdb.Eval(ctx, "return redis.call('set', KEYS[1], 'p')", []string{ns + "prod"}).Err(); err != nil {
		t.Fatalf("production EVAL: %v", err)
	}

	cfg.Redis.Scripts = "allow"
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Eval(marked, script, []string{ns + "declared"}, undeclared).Err(); err != nil {
		t.Fatalf("allowed script: %v", err)
	}
	if bare.Get(ctx, "shadow:"+ns+"declared").Val() != "x" || bare.Get(ctx, undeclared).Val() != "leak" {
		t.Fatal("allowed script: declared key not shadowed, or the undeclared write did not happen (the hazard this setting exists for)")
	}
}
