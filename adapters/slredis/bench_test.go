package slredis_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/internal/testenv"
)

// BenchmarkMSETRealRedis compares an MSET of n keys through a hooked
// client, unmarked (guard) and marked (rewrite), on the real server; the
// marked path must stay within 4x the unmarked one per key.
func BenchmarkMSETRealRedis(b *testing.B) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(b, "Redis", addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	slredis.Instrument(rdb)
	ns := uniq(b)
	defer func() {
		ctx := context.Background()
		for _, p := range []string{ns + "*", "shadow:" + ns + "*"} {
			if keys, _ := rdb.Keys(ctx, p).Result(); len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		}
	}()
	for _, n := range []int{1, 1000} {
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, ns+strconv.Itoa(i), "v")
		}
		for _, c := range []struct {
			name string
			ctx  context.Context
		}{{"unmarked", context.Background()}, {"marked", marked}} {
			b.Run(strconv.Itoa(n)+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := rdb.MSet(c.ctx, args...).Err(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
			})
		}
	}
}
