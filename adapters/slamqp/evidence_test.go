package slamqp_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
)

// On the real RabbitMQ: the consumer counts each marked message it hands
// to its handler once (not its redeliveries) as an entry
// "amqp:<queue>" of the run, route the shadow queue it read, and a message
// whose deliveries are exhausted as "amqp handler"; a marked publish the
// broker does not confirm counts "amqp publish". Production messages,
// failing or not, and refusals leave no errors.
func TestRunEvidence(t *testing.T) {
	conn := dial(t)
	p := uniq()
	q, ghost := p+".billing", p+".ghost"
	cleanup(t, conn, []string{q, q + "_shadow"}, nil)
	raw := channel(t, conn)
	for _, name := range []string{q, q + "_shadow"} {
		if _, err := raw.QueueDeclare(name, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := shadowlane.New(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var refused atomic.Int64
	s := newShadow(t, slamqp.WithRuntime(rt), slamqp.WithShadowQueues(q), slamqp.WithShadowExchanges(ghost), slamqp.WithConfirms(),
		slamqp.WithMaxDeliveries(2), slamqp.WithRefused(func(context.Context, *amqp091.Delivery, error) { refused.Add(1) }))
	pub := s.Channel(channel(t, conn))
	for _, b := range []string{"l1", "l2", "lfail"} {
		if err := pub.PublishWithContext(marked("amqp-r1", ""), "", q, false, false, amqp091.Publishing{Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"p1", "pfail"} {
		if err := pub.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.PublishWithContext(marked("amqp-r1", ""), "amq.topic", "x", false, false, amqp091.Publishing{Body: []byte("r")}); err == nil {
		t.Fatal("marked publish to an unshadowed exchange went through") // a refusal: a decision, not an error
	}
	// ghost_shadow is not declared: the broker closes the channel, the
	// publish is not confirmed.
	if err := s.Channel(channel(t, conn)).PublishWithContext(marked("amqp-r1", ""), ghost, "k", false, false, amqp091.Publishing{Body: []byte("x")}); !errors.Is(err, slamqp.ErrNotConfirmed) {
		t.Fatalf("publish to an undeclared shadow exchange: %v", err)
	}

	var calls atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- s.Channel(channel(t, conn)).Consume(ctx, q, func(_ context.Context, d *amqp091.Delivery) error {
			calls.Add(1)
			if strings.Contains(string(d.Body), "fail") {
				return errors.New("handler bug")
			}
			return nil
		})
	}()
	for (refused.Load() < 2 || calls.Load() < 7) && ctx.Err() == nil { // 3 that succeed, 2 delivered twice
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if refused.Load() != 2 || calls.Load() != 7 {
		t.Fatalf("refused %d, handler calls %d", refused.Load(), calls.Load())
	}
	ev := rt.RunStatus("amqp-r1")
	if want := []shadowlane.RunEntry{{Entry: "amqp:" + q, Route: q + "_shadow", Marked: 3}}; !slices.Equal(ev.Entries, want) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "amqp handler", N: 1}, {Reason: "amqp publish", N: 1}}; !slices.Equal(ev.Errors, want) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
}
