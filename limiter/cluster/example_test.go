package cluster_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/cluster"
)

// Every process of the fleet makes the same call: together they get 500
// requests per second; alone, while Redis is down, each gets 100.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	l, err := cluster.New(rdb, "orders-api", 500, cluster.WithFallbackQPS(100))
	if err != nil {
		panic(err)
	}
	if err := l.Allow(context.Background()); errors.Is(err, limiter.ErrBlocked) {
		fmt.Println("429")
	}
}
