package slamqp_test

import (
	"context"
	"log"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A broker migration's RabbitMQ side: the wrapped channel is a
// migrate.Sender (the map names exchanges; Message.Key is the routing
// key), and Migrating puts the queue consumer behind the Reader. (Needs a
// RabbitMQ, so it is compiled but not run.)
func ExampleChannel_Sender() {
	rt, err := shadowlane.Init() // config "migration:" holds the phase and the map
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	s, err := slamqp.New(slamqp.WithRuntime(rt), slamqp.WithShadowExchanges("orders"), slamqp.WithShadowQueues("billing"), slamqp.WithConfirms())
	if err != nil {
		log.Fatal(err)
	}
	conn, err := amqp091.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	pch, _ := conn.Channel()
	var oldSide migrate.Sender // set it to the old system's adapter Sender: slkafka's (*Producer).Sender(), slnats's (*JetStream).Sender(), ...
	prod, err := migrate.NewProducer(rt, oldSide, s.Channel(pch).Sender())
	if err != nil {
		log.Fatal(err) // a nil Sender is refused
	}
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	_ = prod.Send(ctx, "order-events", &migrate.Message{Key: []byte("order.created"), Value: []byte("order 1")})

	rd := migrate.NewReader(rt, 0)
	cch, _ := conn.Channel()
	_ = s.Channel(cch).Consume(context.Background(), "billing", slamqp.Migrating(rd, migrate.New, func(ctx context.Context, d *amqp091.Delivery) error {
		log.Println(string(d.Body), propagation.FromContext(ctx))
		return nil
	}))
}
