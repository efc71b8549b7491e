package slsarama_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A migration between two topics (kfake) through sarama, through all four
// phases, the consumers of both sides (production and shadow groups)
// running throughout behind one Reader: each phase's messages are written
// through the adapter's rule to the systems the phase writes (marked ones
// to the shadow twins, with the id header), as a plain sarama consumer
// reads them back; each message is handled once, under its mark, from a
// side the phase reads; every other copy is skipped or dropped by its id.
func TestMigrationPhases(t *testing.T) {
	const old, nw = "lanes20-orders", "lanes20-payments"
	addrs := newCluster(t)
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, topic := range []string{old, old + "_shadow", nw, nw + "_shadow"} {
		if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			t.Fatal(err)
		}
	}
	s := newShadow(t, slsarama.WithShadowTopics(old, nw), slsarama.WithShadowGroups("lanes20-old", "lanes20-new"))
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	p := s.SyncProducer(sp)
	ph := bustest.NewPhases(migrate.Before, map[string]string{old: nw})
	prod, err := migrate.NewProducer(ph, p.Sender(), p.Sender())
	if err != nil {
		t.Fatal(err)
	}
	rd, mg := migrate.NewReader(ph, 0), bustest.NewMigration(ph)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	ccfg := config()
	ccfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"lanes20-old", old, migrate.Old}, {"lanes20-new", nw, migrate.New}} {
		cons, err := s.Consumer(addrs, ccfg, c.group, []string{c.topic}, slsarama.Migrating(rd, c.side, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
			mg.Handle(c.side, slsarama.MessageID(msg), propagation.FromContext(ctx))
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = cons.Run(ctx) })
	}
	mg.Drive(t, ph, prod, rd, old, 4, []propagation.Mark{{}, {Run: "run-m"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
	for _, c := range []struct {
		topic, run string
		side       migrate.Side
	}{{old, "", migrate.Old}, {old + "_shadow", "run-m", migrate.Old}, {nw, "", migrate.New}, {nw + "_shadow", "run-m", migrate.New}} {
		mg.Placed(t, c.topic, c.side, c.run, readIDs(t, addrs, c.topic))
	}
	if dups, first := mg.Check(t, rd); dups != 0 {
		t.Errorf("%d copies handled twice (first handled per side %v)", dups, first)
	}
}

// readIDs reads partition 0 of topic with a plain sarama consumer up to
// its newest offset (a quiet period is no proof of the end on a loaded
// machine) and returns each message's migrate.HeaderID header, read
// under its exact name ("" when missing).
func readIDs(t *testing.T, addrs []string, topic string) []string {
	t.Helper()
	cl, err := sarama.NewClient(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end, err := cl.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var ids []string
	timeout := time.After(30 * time.Second)
	for int64(len(ids)) < end {
		select {
		case m := <-pc.Messages():
			id := ""
			for _, h := range m.Headers {
				if string(h.Key) == migrate.HeaderID {
					id = string(h.Value)
				}
			}
			ids = append(ids, id)
		case <-timeout:
			t.Fatalf("read %d of %d messages of %s", len(ids), end, topic)
		}
	}
	return ids
}
