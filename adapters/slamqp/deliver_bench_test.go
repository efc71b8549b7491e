package slamqp

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/propagation"
)

// nopAck settles deliveries without a broker.
type nopAck struct{}

func (nopAck) Ack(uint64, bool) error        { return nil }
func (nopAck) Nack(uint64, bool, bool) error { return nil }
func (nopAck) Reject(uint64, bool) error     { return nil }

// BenchmarkDeliver is a trunk consumer's per-delivery path without a
// broker (decide, then deliver: the decision, the handler's context, the
// handler, the ack), for an unmarked delivery with and without a message
// id. A handled unmarked delivery does not allocate;
// bench/messaging's BenchmarkConsume/amqp compares the decision with the
// bare handler call.
func BenchmarkDeliver(b *testing.B) {
	s, err := New(WithShadowQueues("orders"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sb := &sub{c: &Channel{s: s}, prod: "orders", queue: "orders", tries: map[string]int{},
		prodCtx: propagation.With(ctx, propagation.Mark{})} // as run sets it
	h := Handler(func(context.Context, *amqp091.Delivery) error { return nil })
	for _, c := range []struct{ name, id string }{{"unmarked", ""}, {"unmarked-with-id", "m-1"}} {
		d := &amqp091.Delivery{Acknowledger: nopAck{}, MessageId: c.id, Body: make([]byte, 128),
			Headers: amqp091.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "content-type": "application/json"}}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := sb.deliver(ctx, d, s.decide(sb.prod, sb.queue, d), h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
