package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
)

func Example() {
	clk := limiter.NewManualClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := limiter.New(limiter.WithClock(clk))
	err := l.SetRules([]limiter.Rule{
		// Everyone: 100 QPS, at most 2 at once.
		{Name: "orders", Resource: "GET /orders/:id", QPS: 100, Burst: 2, Concurrency: 2},
		// Load-test traffic: its own budget of 1 request per second.
		{Name: "orders-loadtest", Resource: "GET /orders/:id", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1},
	})
	if err != nil {
		panic(err)
	}
	res := l.Resource("GET /orders/:id") // keep the handle

	ctx := context.Background()
	loadTest := propagation.With(ctx, propagation.Mark{Run: "drill-7"})

	a, _ := res.Entry(ctx)
	b, _ := res.Entry(loadTest)
	_, err = res.Entry(ctx)
	fmt.Println(err)
	a.Exit()
	b.Exit()

	clk.Advance(10 * time.Millisecond)
	_, err = res.Entry(loadTest)
	var be *limiter.BlockError
	if errors.As(err, &be) {
		fmt.Println(be.Rule, be.Reason, "retry after", be.RetryAfter)
	}
	// Output:
	// shadowlane/limiter: GET /orders/:id blocked by rule "orders" (concurrency 3 > 2, class production)
	// orders-loadtest qps retry after 990ms
}

func ExampleBreakerRule() {
	clk := limiter.NewManualClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := limiter.New(limiter.WithClock(clk), limiter.WithStateListener(func(c limiter.StateChange) {
		fmt.Println(c.Resource, c.From, "->", c.To)
	}))
	_ = l.SetRules([]limiter.Rule{{Resource: "redis:*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorRatio, Threshold: 0.5, MinRequests: 4, OpenFor: time.Second,
	}}})
	res := l.Resource("redis:GET")
	for range 4 {
		tok, _ := res.Entry(context.Background())
		tok.ExitErr(errors.New("connection refused"))
	}
	_, err := res.Entry(context.Background())
	fmt.Println(errors.Is(err, limiter.ErrCircuitOpen))
	clk.Advance(time.Second)
	tok, _ := res.Entry(context.Background()) // the probe
	tok.Exit()
	// Output:
	// redis:GET closed -> open
	// true
	// redis:GET open -> half-open
	// redis:GET half-open -> closed
}
