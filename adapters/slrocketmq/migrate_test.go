package slrocketmq_test

import (
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A migration between two topics of the rmqfake fixture through the real
// client, through all four phases, two push consumers (production and
// shadow groups each) running throughout behind one Reader: each phase's
// messages are sent through the producer interceptor to the systems the
// phase writes (marked ones to the shadow topics, with the id and run
// properties), as the broker holds them; each message is handled once,
// under its mark, from a side the phase reads; every other copy is
// skipped or dropped by its id.
func TestMigrationPhases(t *testing.T) {
	const old, nw = "lanes20-orders", "lanes20-orders2"
	srv := fixture(t, old, old+"_shadow", nw, nw+"_shadow")
	s := newShadow(t, slrocketmq.WithShadowTopics(old, nw), slrocketmq.WithShadowGroups("lanes20-oldg", "lanes20-newg"), slrocketmq.WithRuntime(testRuntime(t)))
	p := newProducer(t, s, srv)
	ph := bustest.NewPhases(migrate.Before, map[string]string{old: nw})
	prod, err := migrate.NewProducer(ph, slrocketmq.Sender(p), slrocketmq.Sender(p))
	if err != nil {
		t.Fatal(err)
	}
	rd, mg := migrate.NewReader(ph, 0), bustest.NewMigration(ph)
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"lanes20-oldg", old, migrate.Old}, {"lanes20-newg", nw, migrate.New}} {
		pc, err := s.NewPushConsumer(c.group, consumerOpts(t, srv)...)
		if err != nil {
			t.Fatal(err)
		}
		h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				mg.Handle(c.side, slrocketmq.MessageID(m), propagation.FromContext(ctx))
			}
			return consumer.ConsumeSuccess, nil
		}
		if err := pc.Subscribe(c.topic, consumer.MessageSelector{}, slrocketmq.Migrating(rd, c.side, h)); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Shutdown() })
		settle(t, srv, c.group, c.topic)
		settle(t, srv, c.group+"_shadow", c.topic+"_shadow")
	}
	mg.Drive(t, ph, prod, rd, old, 4, []propagation.Mark{{}, {Run: "run-m"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
	for _, c := range []struct {
		topic, run string
		side       migrate.Side
	}{{old, "", migrate.Old}, {old + "_shadow", "run-m", migrate.Old}, {nw, "", migrate.New}, {nw + "_shadow", "run-m", migrate.New}} {
		var ids []string
		for _, m := range srv.Messages(c.topic) {
			ids = append(ids, m.Properties[migrate.HeaderID])
			if m.Properties[bus.HeaderRun] != c.run {
				t.Errorf("%s: message %q with run property %q, want %q", c.topic, m.Body, m.Properties[bus.HeaderRun], c.run)
			}
		}
		mg.Placed(t, c.topic, c.side, c.run, ids)
	}
	if dups, first := mg.Check(t, rd); dups != 0 {
		t.Errorf("%d copies handled twice (first handled per side %v)", dups, first)
	}
}
