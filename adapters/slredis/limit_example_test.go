package slredis_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
)

func ExampleNewLimitHook() {
	srv, _ := miniredis.Run() // any Redis server
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()

	l := limiter.New() // or rt.Limiter(), with rules from the "limits:" config
	l.SetRules([]limiter.Rule{{Resource: "redis:*", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1}})
	if _, err := slredis.Instrument(rdb); err != nil { // shadow keys
		log.Fatal(err)
	}
	rdb.AddHook(slredis.NewLimitHook(slredis.WithLimiter(l))) // hold load-test commands to their budget

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "drill-1"})
	fmt.Println(rdb.Set(loadTest, "cart:1", "x", 0).Err())
	err := rdb.Set(loadTest, "cart:1", "y", 0).Err()
	var be *limiter.BlockError
	if errors.As(err, &be) {
		fmt.Println("refused:", be.Resource, be.Reason)
	}
	fmt.Println(rdb.Set(context.Background(), "cart:1", "production", 0).Err())
	// Output:
	// <nil>
	// refused: redis:SET qps
	// <nil>
}
