package redis_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
)

var (
	plain  = context.Background()
	marked = propagation.With(context.Background(), propagation.Mark{Run: "bench"})
)

func noop(context.Context, redis.Cmder) error { return nil }

// BenchmarkHookOnly measures what the hook adds to one command, without
// I/O: "bare" calls the next hook directly.
func BenchmarkHookOnly(b *testing.B) {
	get := redis.NewStringCmd(plain, "get", "user:42")
	set := redis.NewStatusCmd(plain, "set", "user:42", "v")
	// A key sharing its first byte with the shadow prefix "shadow:".
	session := redis.NewStringCmd(plain, "get", "session:42")
	guarded := must(slredis.NewHook()).ProcessHook(noop)
	unguarded := must(slredis.NewHook(slredis.WithoutGuard())).ProcessHook(noop)
	for _, c := range []struct {
		name string
		cmd  redis.Cmder
	}{{"GET", get}, {"SET", set}, {"GET-session", session}} {
		for _, v := range []struct {
			name string
			ctx  context.Context
			next redis.ProcessHook // bare: the next hook itself, called as the hook would call it
		}{{"bare", plain, noop}, {"unmarked-guard", plain, guarded}, {"unmarked-noguard", plain, unguarded}, {"marked", marked, guarded}} {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				measure.GrowStack(8)
				for b.Loop() {
					measure.Op(func() { _ = v.next(v.ctx, c.cmd) })
				}
			})
		}
	}
}

// BenchmarkRealRedis runs GET/SET against the real server.
func BenchmarkRealRedis(b *testing.B) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(b, "Redis", addr)
	bare := redis.NewClient(&redis.Options{Addr: addr})
	hooked := redis.NewClient(&redis.Options{Addr: addr})
	hooked.AddHook(must(slredis.NewHook()))
	defer bare.Close()
	defer hooked.Close()
	const key = "slbench:user:42"
	defer bare.Del(plain, key, "shadow:"+key)
	for _, c := range []struct {
		name string
		rdb  *redis.Client
		ctx  context.Context
	}{{"bare", bare, plain}, {"hook-unmarked", hooked, plain}, {"hook-marked", hooked, marked}} {
		b.Run("SET/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.rdb.Set(c.ctx, key, "v", 0).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GET/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.rdb.Get(c.ctx, key).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// must returns v, panicking on a construction error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
