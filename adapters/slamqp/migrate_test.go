package slamqp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Dual read between two exchanges of the loopback RabbitMQ: every message
// is published to both through the adapter's rule (marked ones to both
// shadow exchanges, with the id header), the consumers of both queues
// (and their shadow queues) run through one Reader, and each message is
// handled once under its mark.
func TestMigrationDualRead(t *testing.T) {
	conn := dial(t)
	p := "mig15" + uniq()
	oldX, newX, oldQ, newQ := p+".old", p+".new", p+".oldq", p+".newq"
	cleanup(t, conn, []string{oldQ, oldQ + "_shadow", newQ, newQ + "_shadow"}, []string{oldX, oldX + "_shadow", newX, newX + "_shadow"})
	s, err := slamqp.New(slamqp.WithShadowExchanges(oldX, newX), slamqp.WithShadowQueues(oldQ, newQ), slamqp.WithConfirms())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Declare(channel(t, conn), slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: oldX, Kind: "topic"}, {Name: newX, Kind: "topic"}},
		Queues:    []slamqp.Queue{{Name: oldQ}, {Name: newQ}},
		Bindings:  []slamqp.Binding{{Queue: oldQ, Exchange: oldX, Key: "#"}, {Queue: newQ, Exchange: newX, Key: "#"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	src := migrate.Fixed{Phase: migrate.DualRead, Topics: map[string]string{oldX: newX}}
	prod, err := migrate.NewProducer(src, pub.Sender(), pub.Sender())
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	kinds := map[string]string{}
	for i := range n {
		for _, run := range []string{"", "run-m"} {
			m := &migrate.Message{Key: []byte("order.created"), Value: []byte(fmt.Sprint(run, i))}
			if err := prod.Send(marked(run, ""), oldX, m); err != nil {
				t.Fatal(err)
			}
			kinds[m.ID] = run
		}
	}

	rd := migrate.NewReader(src, 0)
	var mu sync.Mutex
	handled := map[string]int{}
	h := func(ctx context.Context, d *amqp091.Delivery) error {
		id := slamqp.MessageID(d)
		if propagation.FromContext(ctx).Run != kinds[id] {
			t.Errorf("%s handled under %v", d.Body, propagation.FromContext(ctx))
		}
		mu.Lock()
		handled[id]++
		mu.Unlock()
		return nil
	}
	for _, c := range []struct {
		q    string
		side migrate.Side
	}{{oldQ, migrate.Old}, {newQ, migrate.New}} {
		cons := startConsumer(t, s, c.q, slamqp.Migrating(rd, c.side, h))
		t.Cleanup(func() { cons.stop() })
	}
	deadline := time.Now().Add(60 * time.Second)
	for rd.Stats().Handled+rd.Stats().Duplicates < 4*n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	st := rd.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.Handled != 2*n || st.Duplicates != 2*n || len(handled) != 2*n {
		t.Fatalf("reader %+v, handled %d ids", st, len(handled))
	}
	for id, c := range handled {
		if c != 1 {
			t.Errorf("%s handled %d times", id, c)
		}
	}
	// The broker holds nothing more: every copy was acknowledged.
	ch := channel(t, conn)
	for _, q := range []string{oldQ, oldQ + "_shadow", newQ, newQ + "_shadow"} {
		if left := get(t, ch, q); len(left) != 0 {
			t.Errorf("%s still holds %d messages", q, len(left))
		}
	}
}
