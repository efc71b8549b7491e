package slrocketmq_test

import (
	"context"
	"errors"
	"testing"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// What the zero-code wiring appends (orchestrion.yml), on plain client
// constructors: a marked send is refused (no twin is named) and nothing
// reaches the broker; an unmarked one passes; the push consumer refuses
// a run mark on a production topic and handles production messages.
func TestWiredInterceptors(t *testing.T) {
	srv := fixture(t, "orders")
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{srv.Addr()}), producer.WithGroupName("rmq15-wired"),
		producer.WithInstanceName(instanceName(t)), producer.WithRetry(0), producer.WithInterceptor(slrocketmq.WiredProducerInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	if _, err := p.SendSync(marked("r1", ""), msg("orders", "marked")); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatalf("marked send: %v", err)
	}
	if _, err := p.SendSync(context.Background(), msg("orders", "prod")); err != nil {
		t.Fatal(err)
	}
	raw := newProducer(t, nil, srv)
	if _, err := raw.SendSync(context.Background(), msg("orders", "anomaly", bus.HeaderRun, "r1")); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages("orders"); len(got) != 2 {
		t.Fatalf("broker holds %d messages, want the production one and the anomaly", len(got))
	}
	sn := newSeen()
	c, err := rocketmq.NewPushConsumer(append(consumerOpts(t, srv), consumer.WithGroupName("rmq15-wired"),
		consumer.WithInterceptor(slrocketmq.WiredConsumerInterceptor()))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("orders", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		return sn.handler(nil)(ctx, msgs...)
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	settle(t, srv, "rmq15-wired", "orders")
	defer c.Shutdown()
	waitFor(t, "the group past both messages", func() bool { return committed(srv, "rmq15-wired", "orders") == 2 })
	if got := sn.bodies(); len(got) != 1 || got[0] != "prod" {
		t.Errorf("handled %v, want only prod", got)
	}
}
