package slamqp_test

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A migration between two exchanges of the loopback RabbitMQ through all
// four phases, the consumers of both queues (and their shadow queues)
// running throughout behind one Reader: each phase's messages are
// published through the adapter's rule to the exchanges the phase writes
// (marked ones to the shadow exchanges, with the id header), as audit
// queues bound with a plain client see them; each message is handled
// once, under its mark, from a side the phase reads; every other copy is
// skipped or dropped by its id, and acknowledged: the queues end empty.
func TestMigrationPhases(t *testing.T) {
	conn := dial(t)
	p := "lanes20" + uniq()
	oldX, newX, oldQ, newQ := p+".old", p+".new", p+".oldq", p+".newq"
	audit := map[string]string{} // exchange -> its audit queue
	for _, x := range []string{oldX, oldX + "_shadow", newX, newX + "_shadow"} {
		audit[x] = x + ".audit"
	}
	cleanup(t, conn, []string{oldQ, oldQ + "_shadow", newQ, newQ + "_shadow", audit[oldX], audit[oldX+"_shadow"], audit[newX], audit[newX+"_shadow"]},
		[]string{oldX, oldX + "_shadow", newX, newX + "_shadow"})
	s := newShadow(t, slamqp.WithShadowExchanges(oldX, newX), slamqp.WithShadowQueues(oldQ, newQ), slamqp.WithConfirms())
	err := s.Declare(channel(t, conn), slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: oldX, Kind: "topic"}, {Name: newX, Kind: "topic"}},
		Queues:    []slamqp.Queue{{Name: oldQ}, {Name: newQ}},
		Bindings:  []slamqp.Binding{{Queue: oldQ, Exchange: oldX, Key: "#"}, {Queue: newQ, Exchange: newX, Key: "#"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	plain := channel(t, conn) // knows nothing of shadowlane
	for x, q := range audit {
		if _, err := plain.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := plain.QueueBind(q, "#", x, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	pub := s.Channel(channel(t, conn))
	ph := bustest.NewPhases(migrate.Before, map[string]string{oldX: newX})
	prod, err := migrate.NewProducer(ph, pub.Sender(), pub.Sender())
	if err != nil {
		t.Fatal(err)
	}
	rd, mg := migrate.NewReader(ph, 0), bustest.NewMigration(ph)
	for _, c := range []struct {
		q    string
		side migrate.Side
	}{{oldQ, migrate.Old}, {newQ, migrate.New}} {
		cons := startConsumer(t, s, c.q, slamqp.Migrating(rd, c.side, func(ctx context.Context, d *amqp091.Delivery) error {
			mg.Handle(c.side, slamqp.MessageID(d), propagation.FromContext(ctx))
			return nil
		}))
		t.Cleanup(func() { cons.stop() })
	}
	mg.Drive(t, ph, prod, rd, oldX, 5, []propagation.Mark{{}, {Run: "run-m"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
	for _, c := range []struct {
		x, run string
		side   migrate.Side
	}{{oldX, "", migrate.Old}, {oldX + "_shadow", "run-m", migrate.Old}, {newX, "", migrate.New}, {newX + "_shadow", "run-m", migrate.New}} {
		var ids []string
		for _, d := range get(t, plain, audit[c.x]) {
			id, _ := d.Headers[migrate.HeaderID].(string) // the exact name
			ids = append(ids, id)
		}
		mg.Placed(t, c.x, c.side, c.run, ids)
	}
	if dups, first := mg.Check(t, rd); dups != 0 {
		t.Errorf("%d copies handled twice (first handled per side %v)", dups, first)
	}
	// The broker holds nothing more: every copy was acknowledged.
	for _, q := range []string{oldQ, oldQ + "_shadow", newQ, newQ + "_shadow"} {
		if left := get(t, plain, q); len(left) != 0 {
			t.Errorf("%s still holds %d messages", q, len(left))
		}
	}
}
