package slrocketmq_test

import (
	"context"
	"fmt"

	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A broker migration's RocketMQ side: Sender wraps a producer built by
// NewProducer, so in phase 3 (new only) a marked message written for the
// old system's name lands on the shadow twin of the mapped RocketMQ topic,
// with the message id property.
func ExampleSender() {
	broker, _ := rmqfake.New(nil) // test-only stand-in for a name server and broker
	defer broker.Close()
	for _, t := range []string{"order-events", "order-events_shadow"} {
		broker.CreateTopic(t, 1)
	}
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Migration: shadowlane.MigrationConfig{
		Phase: 3, Topics: map[string]string{"orders.created": "order-events"}}})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, _ := slrocketmq.New(slrocketmq.WithRuntime(rt), slrocketmq.WithShadowTopics("order-events"))
	p, _ := s.NewProducer(producer.WithNameServer([]string{broker.Addr()}), producer.WithInstanceName("example-mig"))
	p.Start()
	defer p.Shutdown()

	old := migrate.SenderFunc(func(context.Context, string, migrate.Message) error { panic("phase 3 writes the new system only") })
	prod, _ := migrate.NewProducer(rt, old, slrocketmq.Sender(p))
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	err = prod.Send(ctx, "orders.created", &migrate.Message{ID: "order-1", Value: []byte("created")})
	for _, m := range broker.Messages("order-events_shadow") {
		fmt.Println(m.Topic, m.Properties[migrate.HeaderID], m.Properties["X-Shadowlane-Run"], err)
	}
	// Output:
	// order-events_shadow order-1 run-7 <nil>
}
