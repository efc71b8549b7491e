package limiter_test

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/limiter"
)

// Pass-path overhead of the store exits: each admits through a limiter
// with a QPS + concurrency rule that never refuses, around a no-op call
// (no network), so the numbers are the exit's own cost.

func exitLimiter(b *testing.B, pattern string) *limiter.Limiter {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: pattern, QPS: 1e9, Burst: 1e6, Concurrency: 1 << 20}}); err != nil {
		b.Fatal(err)
	}
	return l
}

func BenchmarkExitRedisHook(b *testing.B) {
	next := slredis.NewLimitHook(slredis.WithLimiter(exitLimiter(b, "redis:*"))).ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	ctx := context.Background()
	cmd := redis.NewStringCmd(ctx, "get", "k")
	run(b, false, func() { next(ctx, cmd) })
}

func BenchmarkExitRedisHookParallel(b *testing.B) {
	next := slredis.NewLimitHook(slredis.WithLimiter(exitLimiter(b, "redis:*"))).ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		cmd := redis.NewStringCmd(ctx, "get", "k")
		for pb.Next() {
			next(ctx, cmd)
		}
	})
}

type nopConn struct{ driver.Conn }

func (nopConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nil }

func BenchmarkExitSQL(b *testing.B) {
	c, err := slsql.NewConnector(nopConnector{}, nil, slsql.WithLimiter(exitLimiter(b, "sql:*")))
	if err != nil {
		b.Fatal(err)
	}
	cn, _ := c.Connect(context.Background())
	ex := cn.(driver.ExecerContext)
	ctx := context.Background()
	run(b, false, func() { ex.ExecContext(ctx, "INSERT INTO orders (id) VALUES (?)", nil) })
}

func BenchmarkExitKafkaAdmit(b *testing.B) {
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(exitLimiter(b, "kafka:*")))
	ctx := context.Background()
	r := &kgo.Record{Topic: "orders"}
	run(b, false, func() {
		if tok, err := pl.Admit(ctx, r); err == nil {
			tok.Exit()
		}
	})
}

type nopProducer struct{}

func (nopProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	promise(r, nil)
}

func BenchmarkExitKafkaProduce(b *testing.B) {
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(exitLimiter(b, "kafka:*")))
	ctx := context.Background()
	r := &kgo.Record{Topic: "orders"}
	run(b, false, func() { pl.Produce(ctx, nopProducer{}, r, nil) })
}
