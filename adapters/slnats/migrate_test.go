package slnats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A migration between two JetStream streams through all four phases, the
// consumers of both sides (each on its stream and the stream's shadow
// twin) running throughout behind one Reader: each phase's messages are
// published through the adapter's rule to the streams the phase writes
// (marked ones to the shadow streams, with the id header), as a plain
// client reads them back; each message is handled once, under its mark,
// from a side the phase reads; every other copy is skipped or dropped by
// its id.
func TestMigrationPhases(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		p := "lanes20" + uniq()
		oldSubj, newSubj := p+".orders.created", p+".orders2.created"
		s := newShadow(t, slnats.WithShadowSubjects(p+".orders.>", p+".orders2.>"))
		js := jetStream(t, connect(t, url))
		ctx := context.Background()
		streams := map[migrate.Side]string{migrate.Old: strings.ToUpper(p) + "-OLD", migrate.New: strings.ToUpper(p) + "-NEW"}
		for side, subj := range map[migrate.Side]string{migrate.Old: p + ".orders.>", migrate.New: p + ".orders2.>"} {
			name := streams[side]
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				js.DeleteStream(context.Background(), name)
				js.DeleteStream(context.Background(), s.StreamName(name))
			})
			if _, err := s.CreateShadowStream(ctx, js, name); err != nil {
				t.Fatal(err)
			}
		}
		pub := s.JetStream(js)
		ph := bustest.NewPhases(migrate.Before, map[string]string{oldSubj: newSubj})
		prod, err := migrate.NewProducer(ph, pub.Sender(), pub.Sender())
		if err != nil {
			t.Fatal(err)
		}
		rd, mg := migrate.NewReader(ph, 0), bustest.NewMigration(ph)
		for _, side := range []migrate.Side{migrate.Old, migrate.New} {
			cons, err := s.ConsumeJetStream(ctx, js, streams[side], jetstream.ConsumerConfig{Durable: "lanes20-reader", AckPolicy: jetstream.AckExplicitPolicy},
				slnats.Migrating(rd, side, func(ctx context.Context, m jetstream.Msg) error {
					mg.Handle(side, slnats.MessageID(m.Headers()), propagation.FromContext(ctx))
					return nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cons.Stop)
		}
		mg.Drive(t, ph, prod, rd, oldSubj, 5, []propagation.Mark{{}, {Run: "run-m"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
		for _, side := range []migrate.Side{migrate.Old, migrate.New} {
			mg.Placed(t, streams[side], side, "", streamIDs(t, js, streams[side]))
			mg.Placed(t, s.StreamName(streams[side]), side, "run-m", streamIDs(t, js, s.StreamName(streams[side])))
		}
		if dups, first := mg.Check(t, rd); dups != 0 {
			t.Errorf("%d copies handled twice (first handled per side %v)", dups, first)
		}
	})
}

// streamIDs reads every message of stream with a plain ordered consumer
// (up to the count the stream's info gives) and returns each one's
// migrate.HeaderID header, read under its exact name ("" when missing).
func streamIDs(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if info.State.Msgs == 0 {
		return ids
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for uint64(len(ids)) < info.State.Msgs {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d messages of %s", len(ids), info.State.Msgs, stream)
		}
		batch, err := oc.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			var id string
			if v := m.Headers()[migrate.HeaderID]; len(v) > 0 {
				id = v[0]
			}
			ids = append(ids, id)
		}
	}
	return ids
}
