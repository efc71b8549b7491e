package slkafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/limiter"
)

func manualLimiter(t *testing.T, rules ...limiter.Rule) (*limiter.Limiter, *limiter.ManualClock) {
	t.Helper()
	clk := limiter.NewManualClock(time.Unix(1000, 0))
	l := limiter.New(limiter.WithClock(clk))
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// Load-test records are held to their budget; refused records never reach
// the cluster (kfake's topics prove it) and production is untouched.
func TestProduceLimiterBudget(t *testing.T) {
	addrs := newCluster(t)
	cl := newClient(t, addrs)
	p, err := newShadow(t, slkafka.WithShadowTopics("orders")).Producer(cl)
	if err != nil {
		t.Fatal(err)
	}
	l, clk := manualLimiter(t, limiter.Rule{Name: "lt-orders", Resource: "kafka:orders", Class: limiter.ClassLoadTest, QPS: 1, Burst: 2})
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(l))
	lt := marked("run-1", "")
	res := pl.ProduceSync(lt, p, &kgo.Record{Topic: "orders", Value: []byte("a")}, &kgo.Record{Topic: "orders", Value: []byte("b")}, &kgo.Record{Topic: "orders", Value: []byte("c")})
	var refused int
	for _, r := range res {
		var be *limiter.BlockError
		switch {
		case r.Err == nil:
		case errors.As(r.Err, &be):
			refused++
			if be.Resource != "kafka:orders" || be.Rule != "lt-orders" || be.Class != "loadtest" {
				t.Errorf("block %+v", be)
			}
		default:
			t.Errorf("produce %s: %v", r.Record.Value, r.Err)
		}
	}
	if refused != 1 {
		t.Errorf("%d refused, want 1", refused)
	}
	// A refused record's promise runs at once, on the calling goroutine.
	called := false
	pl.Produce(lt, p, &kgo.Record{Topic: "orders", Value: []byte("d")}, func(_ *kgo.Record, err error) {
		called = errors.Is(err, limiter.ErrBlocked)
	})
	if !called {
		t.Error("promise of a refused record not called at once with the refusal")
	}
	for _, v := range []string{"p1", "p2", "p3"} {
		if err := pl.ProduceSync(context.Background(), p, &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("production: %v", err)
		}
	}
	clk.Advance(time.Second)
	if err := pl.ProduceSync(lt, p, &kgo.Record{Topic: "orders", Value: []byte("e")}).FirstErr(); err != nil {
		t.Errorf("after refill: %v", err)
	}
	if got := len(readAll(t, addrs, "orders_shadow")); got != 3 {
		t.Errorf("orders_shadow holds %d records, want 3 (2 + 1 after refill)", got)
	}
	if got := len(readAll(t, addrs, "orders")); got != 3 {
		t.Errorf("orders holds %d records, want 3", got)
	}
}

// Produce failures open a breaker on the topic; while open, records are
// refused without reaching the client.
func TestProduceLimiterBreaker(t *testing.T) {
	addrs := newCluster(t)
	// A topic the cluster does not have and will not create: every produce fails.
	cl := newClient(t, addrs, kgo.UnknownTopicRetries(0), kgo.ProducerLinger(0))
	l, clk := manualLimiter(t, limiter.Rule{Name: "br", Resource: "kafka:*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorCount, Threshold: 2, MinRequests: 2, OpenFor: time.Second}})
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(l))
	ctx := context.Background()
	for range 2 {
		if err := pl.ProduceSync(ctx, cl, &kgo.Record{Topic: "missing-topic"}).FirstErr(); err == nil || errors.Is(err, limiter.ErrBlocked) {
			t.Fatalf("produce to a missing topic: %v", err)
		}
	}
	if s, _ := l.BreakerState("kafka:missing-topic", "br"); s != limiter.Open {
		t.Fatalf("breaker %v, want open", s)
	}
	if err := pl.ProduceSync(ctx, cl, &kgo.Record{Topic: "missing-topic"}).FirstErr(); !errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatalf("produce while open: %v", err)
	}
	if err := pl.ProduceSync(ctx, cl, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("another topic has its own breaker: %v", err)
	}
	clk.Advance(time.Second)
	// The half-open probe fails again: open again.
	if err := pl.ProduceSync(ctx, cl, &kgo.Record{Topic: "missing-topic"}).FirstErr(); err == nil || errors.Is(err, limiter.ErrBlocked) {
		t.Fatalf("probe: %v", err)
	}
	if s, _ := l.BreakerState("kafka:missing-topic", "br"); s != limiter.Open {
		t.Errorf("breaker %v after a failed probe, want open", s)
	}
}

// Admitting a record of a known topic does not allocate.
func TestProduceLimiterAllocs(t *testing.T) {
	l, _ := manualLimiter(t, limiter.Rule{Resource: "kafka:*", QPS: 1e9, Concurrency: 1000})
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(l))
	ctx := context.Background()
	r := &kgo.Record{Topic: "orders"}
	if n := testing.AllocsPerRun(1000, func() {
		tok, err := pl.Admit(ctx, r)
		if err == nil {
			tok.Exit()
		}
	}); n != 0 {
		t.Errorf("%v allocs per admitted record, want 0", n)
	}
}
