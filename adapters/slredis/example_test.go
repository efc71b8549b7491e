package slredis_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

func ExampleNewHook() {
	srv, _ := miniredis.Run() // any Redis server
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if _, err := slredis.Instrument(rdb); err != nil { // key mode: prefix "shadow:"
		log.Fatal(err)
	}

	ctx := context.Background()
	loadTest := propagation.With(ctx, propagation.Mark{Run: "drill-1"})

	rdb.Set(ctx, "cart:1", "production", 0)
	rdb.Set(loadTest, "cart:1", "load test", 0)

	fmt.Println(rdb.Get(ctx, "cart:1").Val())
	fmt.Println(rdb.Get(loadTest, "cart:1").Val())
	fmt.Println(rdb.Keys(loadTest, "cart:*").Val()) // the application's names
	fmt.Println(srv.Keys())                         // what the server holds

	err := rdb.FlushDB(loadTest).Err()
	fmt.Println(errors.Is(err, shadow.ErrBlocked))
	err = rdb.Get(ctx, "shadow:cart:1").Err()
	fmt.Println(errors.Is(err, shadow.ErrShadowFromProduction))
	// Output:
	// production
	// load test
	// [cart:1]
	// [cart:1 shadow:cart:1]
	// true
	// true
}

func ExampleWithShadowClient() {
	prod, _ := miniredis.Run()
	defer prod.Close()
	shadowSrv, _ := miniredis.Run()
	defer shadowSrv.Close()
	shadowRDB := redis.NewClient(&redis.Options{Addr: shadowSrv.Addr()})
	defer shadowRDB.Close()
	rdb := redis.NewClient(&redis.Options{Addr: prod.Addr()})
	defer rdb.Close()
	if _, err := slredis.Instrument(rdb, slredis.WithShadowClient(shadowRDB)); err != nil {
		log.Fatal(err)
	}

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "drill-1"})
	rdb.Set(loadTest, "cart:1", "load test", 0)
	fmt.Println(prod.Keys(), shadowSrv.Keys())
	// Output: [] [cart:1]
}

func ExampleHook_Subscribe() {
	srv, _ := miniredis.Run() // any Redis server
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	h, err := slredis.Instrument(rdb) // key mode: prefix "shadow:"
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the subscriptions too
	seen := make(chan string, 10)
	sub, err := h.Subscribe(ctx, rdb, []string{"orders"}, func(ctx context.Context, msg *slredis.Message) {
		seen <- fmt.Sprintf("%v: %s on %s (wire %s)", propagation.FromContext(ctx), msg.Payload, msg.Channel, msg.WireChannel)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	// A production pattern through the helper never sees load-test messages.
	broad := make(chan string, 10)
	all, err := h.PSubscribe(ctx, rdb, []string{"*"}, func(ctx context.Context, msg *slredis.Message) {
		broad <- fmt.Sprintf("%v: %s on %s", propagation.FromContext(ctx), msg.Payload, msg.Channel)
	}, slredis.WithProductionOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer all.Close()

	loadTest := propagation.With(ctx, propagation.Mark{Run: "drill-1"})
	rdb.Publish(loadTest, "orders", "test order") // goes to "shadow:orders"
	fmt.Println(<-seen)
	rdb.Publish(ctx, "orders", "real order")
	fmt.Println(<-seen)
	fmt.Println(<-broad) // the load-test message before it was dropped
	// Output:
	// run=unattributed: test order on orders (wire shadow:orders)
	// production: real order on orders (wire orders)
	// production: real order on orders
}

// Refusing marked scripts from config: redis.scripts: refuse in the
// runtime's config (a YAML file, SHADOWLANE_REDIS_SCRIPTS, or code).
func ExampleWithRuntime() {
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{
		Trust: shadowlane.TrustConfig{Mode: "internal"},
		Redis: shadowlane.RedisConfig{Scripts: "refuse"},
	}), shadowlane.WithoutDefault())
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	srv, _ := miniredis.Run()
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	slredis.Instrument(rdb, slredis.WithRuntime(rt))

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	err = rdb.Eval(loadTest, "return redis.call('incr', KEYS[1])", []string{"hits"}).Err()
	fmt.Println(errors.Is(err, shadow.ErrBlocked))
	fmt.Println(rdb.Eval(context.Background(), "return redis.call('incr', KEYS[1])", []string{"hits"}).Val())
	// Output:
	// true
	// 1
}
