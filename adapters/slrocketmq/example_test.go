package slrocketmq_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// A message sent under a load-test mark lands on the shadow twin of its
// topic with the mark in its properties; the shadow consumer group hands it
// to the same handler with the mark in the context. A marked message for a
// topic without a shadow twin is refused.
func Example() {
	// A loopback stand-in for a RocketMQ name server and broker (test
	// only); a service passes its name server addresses instead.
	broker, _ := rmqfake.New(nil)
	defer broker.Close()
	for _, t := range []string{"orders", "orders_shadow", "payments"} {
		broker.CreateTopic(t, 1)
	}

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, err := slrocketmq.New(slrocketmq.WithRuntime(rt), slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"))
	if err != nil {
		panic(err)
	}

	p, err := s.NewProducer(producer.WithNameServer([]string{broker.Addr()}), producer.WithInstanceName("example-p"))
	if err != nil {
		panic(err)
	}
	p.Start()
	defer p.Shutdown()
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	res, err := p.SendSync(ctx, primitive.NewMessage("orders", []byte("order 1")))
	fmt.Println("sent to", res.MessageQueue.Topic, err)
	res, err = p.SendSync(context.Background(), primitive.NewMessage("orders", []byte("order 2")))
	fmt.Println("sent to", res.MessageQueue.Topic, err)
	_, err = p.SendSync(ctx, primitive.NewMessage("payments", nil))
	fmt.Println(errors.Is(err, shadow.ErrNoShadowTarget))

	c, err := s.NewPushConsumer("billing", consumer.WithNameServer([]string{broker.Addr()}),
		consumer.WithInstance("example-c"), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		panic(err)
	}
	got := make(chan string, 2)
	c.Subscribe("orders", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			got <- fmt.Sprintf("%s %q %s", m.Topic, m.Body, propagation.FromContext(ctx))
		}
		return consumer.ConsumeSuccess, nil
	})
	if err := c.Start(); err != nil {
		panic(err)
	}
	defer c.Shutdown()
	lines := []string{<-got, <-got}
	// The client rebalances in the background after Start and races with a
	// Shutdown during it: let it finish before the deferred Shutdown.
	waitRebalanced(broker, "billing", "orders")
	waitRebalanced(broker, "billing_shadow", "orders_shadow")
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// sent to orders_shadow <nil>
	// sent to orders <nil>
	// true
	// orders "order 2" production
	// orders_shadow "order 1" run=run-7
}

// The interceptor can be installed on a producer built elsewhere; it then
// applies to every send method. An unmarked message for a shadow topic is
// refused: production traffic never writes load-test data.
func ExampleShadow_ProducerInterceptor() {
	broker, _ := rmqfake.New(nil)
	defer broker.Close()
	broker.CreateTopic("orders", 1)
	broker.CreateTopic("orders_shadow", 1)

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "checkout", Trust: shadowlane.TrustConfig{Mode: "internal"}}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, err := slrocketmq.New(slrocketmq.WithRuntime(rt), slrocketmq.WithShadowTopics("orders"))
	if err != nil {
		panic(err)
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{broker.Addr()}), producer.WithInstanceName("example-i"),
		producer.WithInterceptor(s.ProducerInterceptor())) // last, after any other interceptor
	if err != nil {
		panic(err)
	}
	p.Start()
	defer p.Shutdown()

	m := primitive.NewMessage("orders", []byte("order 3"))
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7", Env: "proj-a"})
	err = p.SendOneWay(ctx, m)
	fmt.Println(m.Topic, m.GetProperty(bus.HeaderRun), m.GetProperty(bus.HeaderEnv), err)

	_, err = p.SendSync(context.Background(), primitive.NewMessage("orders_shadow", nil))
	fmt.Println(errors.Is(err, shadow.ErrShadowFromProduction))
	// Output:
	// orders_shadow run-7 proj-a <nil>
	// true
}

// waitRebalanced waits (at most 10 s) until group pulls from every queue of
// topics and of its retry topic.
func waitRebalanced(broker *rmqfake.Server, group string, topics ...string) {
	topics = append(topics, "%RETRY%"+group)
	for deadline := time.Now().Add(10 * time.Second); !broker.Pulled(group, topics...) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
}
