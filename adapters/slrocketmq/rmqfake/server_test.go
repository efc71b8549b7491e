package rmqfake_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	rocketmq "github.com/apache/rocketmq-client-go/v2"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
)

func init() { rlog.SetLogLevel("error") }

// The real client produces to the fixture and consumes back with a push
// consumer; every request it sent is one the fixture serves.
func TestRoundTrip(t *testing.T) {
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.CreateTopic("rt-orders", 2)
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.Addr()}),
		producer.WithGroupName("rt-pg"), producer.WithInstanceName(t.Name()+"-p"), producer.WithRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	const n = 20
	for i := range n {
		m := primitive.NewMessage("rt-orders", fmt.Appendf(nil, "m%d", i))
		m.WithProperty("k", fmt.Sprint(i))
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if _, err := p.SendSync(context.Background(), primitive.NewMessage("rt-missing", nil)); err == nil {
		t.Fatal("send to a topic nobody created succeeded")
	}
	if got := len(srv.Messages("rt-orders")); got != n {
		t.Fatalf("stored %d messages, want %d", got, n)
	}
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{srv.Addr()}),
		consumer.WithGroupName("rt-cg"), consumer.WithInstance(t.Name()+"-c"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	err = c.Subscribe("rt-orders", consumer.MessageSelector{}, func(ctx context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ms {
			seen[string(m.Body)]++
			if len(seen) == n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		t.Fatalf("consumed %d of %d", len(seen), n)
	}
	// let the client's background start-up rebalance finish: it races
	// with a Shutdown during it
	for !srv.Pulled("rt-cg", "rt-orders", "%RETRY%rt-cg") {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	c.Shutdown()
	if u := srv.Unknown(); len(u) != 0 {
		t.Errorf("client sent request codes the fixture does not serve: %v", u)
	}
	t.Logf("requests: %v", srv.Requests())
}
