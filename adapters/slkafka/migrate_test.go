package slkafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A migration between two Kafka topics (kfake) through all four phases,
// the consumers of both sides (production and shadow groups) running
// throughout behind one Reader: each phase's messages are written through
// the adapter's produce rule to the systems the phase writes (marked ones
// to the shadow twins, with the id header), as a plain client reads them
// back; each message is handled once, under its mark, from a side the
// phase reads; every other copy is skipped or dropped by its id.
func TestMigrationPhases(t *testing.T) {
	const old, nw = "lanes20-orders", "lanes20-payments"
	addrs := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(newClient(t, addrs)).CreateTopics(ctx, 1, 1, nil, old, old+"_shadow", nw, nw+"_shadow"); err != nil {
		t.Fatal(err)
	}
	s := newShadow(t, slkafka.WithShadowTopics(old, nw), slkafka.WithShadowGroups("lanes20-old", "lanes20-new"))
	p, err := s.Producer(newClient(t, addrs, kgo.WithHooks(s)))
	if err != nil {
		t.Fatal(err)
	}
	ph := bustest.NewPhases(migrate.Before, map[string]string{old: nw})
	prod, err := migrate.NewProducer(ph, p.Sender(), p.Sender())
	if err != nil {
		t.Fatal(err)
	}
	rd, mg := migrate.NewReader(ph, 0), bustest.NewMigration(ph)
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"lanes20-old", old, migrate.Old}, {"lanes20-new", nw, migrate.New}} {
		cons, err := s.Consumer(c.group, []string{c.topic}, slkafka.Migrating(rd, c.side, func(ctx context.Context, r *kgo.Record) error {
			mg.Handle(c.side, slkafka.MessageID(r), propagation.FromContext(ctx))
			return nil
		}), kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		waitStarted(t, cons, runConsumer(t, cons))
	}
	mg.Drive(t, ph, prod, rd, old, 5, []propagation.Mark{{}, {Run: "run-m"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
	for _, c := range []struct {
		topic, run string
		side       migrate.Side
	}{{old, "", migrate.Old}, {old + "_shadow", "run-m", migrate.Old}, {nw, "", migrate.New}, {nw + "_shadow", "run-m", migrate.New}} {
		var ids []string
		for _, r := range readAll(t, addrs, c.topic) {
			id, _ := header(r, migrate.HeaderID) // the exact name, as a plain client reads it
			ids = append(ids, id)
		}
		mg.Placed(t, c.topic, c.side, c.run, ids)
	}
	if dups, first := mg.Check(t, rd); dups != 0 {
		t.Errorf("%d copies handled twice (first handled per side %v)", dups, first)
	}
}
