package slamqp_test

import (
	"context"
	"fmt"
	"log"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
)

// Wrap a channel, declare the topology with its shadow twins, publish and
// consume. (Needs a RabbitMQ, so it is compiled but not run.)
func Example() {
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "billing"}))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	s, err := slamqp.New(slamqp.WithRuntime(rt), slamqp.WithShadowExchanges("orders"), slamqp.WithShadowQueues("billing"))
	if err != nil {
		log.Fatal(err)
	}

	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	err = s.Declare(ch, slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: "orders", Kind: "topic", Durable: true}},
		Queues:    []slamqp.Queue{{Name: "billing", Durable: true}},
		Bindings:  []slamqp.Binding{{Queue: "billing", Exchange: "orders", Key: "order.#"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	c := s.Channel(ch)
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	// goes to exchange orders_shadow with the X-Shadowlane-Run header
	_ = c.PublishWithContext(ctx, "orders", "order.created", false, false, amqp091.Publishing{Body: []byte("order 1")})

	// reads billing and billing_shadow; ctx carries each message's mark
	_ = c.Consume(context.Background(), "billing", func(ctx context.Context, d *amqp091.Delivery) error {
		log.Println(string(d.Body), propagation.FromContext(ctx))
		return nil
	})
}

// The shadow topology mirrors production for the configured exchanges and
// queues; dead-letter arguments name shadow twins.
func ExampleShadow_ShadowTopology() {
	s, _ := slamqp.New(slamqp.WithShadowExchanges("orders", "dlx"), slamqp.WithShadowQueues("billing"))
	st, err := s.ShadowTopology(slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: "orders", Kind: "topic"}, {Name: "dlx", Kind: "fanout"}},
		Queues:    []slamqp.Queue{{Name: "billing", Args: amqp091.Table{"x-dead-letter-exchange": "dlx"}}},
		Bindings:  []slamqp.Binding{{Queue: "billing", Exchange: "orders", Key: "order.#"}},
	})
	if err != nil {
		panic(err)
	}
	for _, e := range st.Exchanges {
		fmt.Println("exchange", e.Name)
	}
	for _, q := range st.Queues {
		fmt.Println("queue", q.Name, "dead-letters to", q.Args["x-dead-letter-exchange"])
	}
	for _, b := range st.Bindings {
		fmt.Println("binding", b.Exchange, b.Key, "->", b.Queue)
	}
	// Output:
	// exchange orders_shadow
	// exchange dlx_shadow
	// queue billing_shadow dead-letters to dlx_shadow
	// binding orders_shadow order.# -> billing_shadow
}
