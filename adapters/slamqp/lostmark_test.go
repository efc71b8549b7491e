package slamqp_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

func bodies(ds []amqp091.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.Body))
	}
	slices.Sort(out)
	return out
}

// TestLostMarkGuard: unmarked publishes whose routing key, message id or
// headers are load-test data (testData:) are refused before they reach
// RabbitMQ; the queues, read back with a plain channel, hold only the
// production messages and the marked one in the shadow queue.
func TestLostMarkGuard(t *testing.T) {
	conn := dial(t)
	p := uniq()
	ex, q := p+".orders", p+".billing"
	cleanup(t, conn, []string{q, q + "_shadow"}, []string{ex, ex + "_shadow"})
	raw := channel(t, conn)
	for _, x := range []string{ex, ex + "_shadow"} {
		if err := raw.ExchangeDeclare(x, "topic", false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range [][2]string{{q, ex}, {q + "_shadow", ex + "_shadow"}} {
		if _, err := raw.QueueDeclare(b[0], false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := raw.QueueBind(b[0], "order.#", b[1], false, nil); err != nil {
			t.Fatal(err)
		}
	}
	rt := bustest.TestDataRuntime(t, "")
	s := newShadow(t, slamqp.WithShadowExchanges(ex), slamqp.WithShadowQueues(q), slamqp.WithRuntime(rt), slamqp.WithConfirms())
	ch := s.Channel(channel(t, conn))
	bg := context.Background()
	lost := []struct {
		name, key string
		msg       amqp091.Publishing
	}{
		{"key", "order.lt-1", amqp091.Publishing{Body: []byte("w-key")}},
		{"message id", "order.new", amqp091.Publishing{MessageId: "lt-msg-1", Body: []byte("w-id")}},
		{"header rule", "order.new", amqp091.Publishing{Headers: amqp091.Table{"X-Test": "yes"}, Body: []byte("w-hdr")}},
		{"header value", "order.new", amqp091.Publishing{Headers: amqp091.Table{"user": "lt-7"}, Body: []byte("w-hval")}},
		{"int header", "order.new", amqp091.Publishing{Headers: amqp091.Table{"user_id": int64(9000000001)}, Body: []byte("w-int")}},
		{"nested", "order.new", amqp091.Publishing{Headers: amqp091.Table{"meta": amqp091.Table{"tags": []any{"a", []byte("lt-9")}}}, Body: []byte("w-nested")}},
	}
	for _, c := range lost {
		err := ch.PublishWithContext(bg, ex, c.key, false, false, c.msg)
		var se *shadow.Error
		if !errors.Is(err, shadow.ErrLostMark) || !errors.As(err, &se) || se.Store != "amqp" {
			t.Errorf("%s: err = %v, want an amqp *shadow.Error wrapping ErrLostMark", c.name, err)
		}
	}
	// the default exchange (routing key = queue name) is guarded too
	if err := ch.PublishWithContext(bg, "", q, false, false, amqp091.Publishing{CorrelationId: "9000000002", Body: []byte("w-default")}); !errors.Is(err, shadow.ErrLostMark) {
		t.Errorf("default exchange: err = %v, want ErrLostMark", err)
	}
	// the body is not read; production data and marked load-test data pass
	if err := ch.PublishWithContext(bg, ex, "order.new", false, false, amqp091.Publishing{Headers: amqp091.Table{"user": "u-7"}, Body: []byte("prod lt-1")}); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(marked("r1", ""), ex, "order.lt-1", false, false, amqp091.Publishing{Headers: amqp091.Table{"X-Test": "yes"}, Body: []byte("load")}); err != nil {
		t.Fatal(err)
	}
	if got := bodies(get(t, raw, q)); !slices.Equal(got, []string{"prod lt-1"}) {
		t.Fatalf("%s holds %q, want only the production message", q, got)
	}
	if got := bodies(get(t, raw, q+"_shadow")); !slices.Equal(got, []string{"load"}) {
		t.Fatalf("%s_shadow holds %q", q, got)
	}
	if got := rt.Stats().LostMarks["amqp"]; got != int64(len(lost))+1 {
		t.Fatalf("LostMarks = %v, want amqp %d", rt.Stats().LostMarks, len(lost)+1)
	}

	// action alert: the publish goes through and is counted
	alert := bustest.TestDataRuntime(t, "alert")
	sa := newShadow(t, slamqp.WithShadowExchanges(ex), slamqp.WithShadowQueues(q), slamqp.WithRuntime(alert), slamqp.WithConfirms())
	cha := sa.Channel(channel(t, conn))
	if err := cha.PublishWithContext(bg, ex, "order.lt-2", false, false, amqp091.Publishing{Body: []byte("alerted")}); err != nil {
		t.Fatal(err)
	}
	if got := bodies(get(t, raw, q)); !slices.Equal(got, []string{"alerted"}) {
		t.Fatalf("%s holds %q after an alert", q, got)
	}
	if got := alert.Stats().LostMarks["amqp"]; got != 1 {
		t.Fatalf("alert LostMarks = %v", alert.Stats().LostMarks)
	}
}

// BenchmarkPrepareUnmarked: the publish rules on an unmarked publish with
// headers, without testData (one pointer load) and with it.
func BenchmarkPrepareUnmarked(b *testing.B) {
	off, _ := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	defer off.Close()
	bg := context.Background()
	for _, c := range []struct {
		name string
		rt   *shadowlane.Runtime
	}{{"off", off}, {"on", bustest.TestDataRuntime(b, "")}} {
		s := newShadow(b, slamqp.WithShadowExchanges("orders"), slamqp.WithRuntime(c.rt))
		msg := amqp091.Publishing{MessageId: "m-12345", Headers: amqp091.Table{"trace": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "user_id": int64(12345)}, Body: []byte("v")}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := msg
				if _, _, err := s.Prepare(bg, "orders", "order.new", &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
