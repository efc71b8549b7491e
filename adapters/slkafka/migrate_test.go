package slkafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Dual read between two Kafka topics (kfake): every message is written to
// both through the adapter's produce rule (marked ones to both shadow
// twins), the consumers of both sides run through one Reader, and each
// message is handled once.
func TestMigrationDualRead(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders", "payments"), slkafka.WithShadowGroups("old", "new"))
	p, err := s.Producer(newClient(t, addrs, kgo.WithHooks(s)))
	if err != nil {
		t.Fatal(err)
	}
	src := migrate.Fixed{Phase: migrate.DualRead, Topics: map[string]string{"orders": "payments"}}
	prod, err := migrate.NewProducer(src, p.Sender(), p.Sender())
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	kinds := map[string]string{}
	for i := range n {
		for _, run := range []string{"", "run-m"} {
			ctx := propagation.With(context.Background(), propagation.Mark{Run: run})
			m := &migrate.Message{Value: []byte(fmt.Sprint(run, i))}
			if err := prod.Send(ctx, "orders", m); err != nil {
				t.Fatal(err)
			}
			kinds[m.ID] = run
		}
	}
	for topic, want := range map[string]string{"orders": "", "payments": "", "orders_shadow": "run-m", "payments_shadow": "run-m"} {
		rs := readAll(t, addrs, topic)
		if len(rs) != n {
			t.Fatalf("%s holds %d records, want %d", topic, len(rs), n)
		}
		for _, r := range rs {
			id := slkafka.MessageID(r)
			run, ok := kinds[id]
			if !ok || run != want {
				t.Fatalf("%s: record %q with id %q (run %q), want only run %q", topic, r.Value, id, run, want)
			}
		}
	}

	rd := migrate.NewReader(src, 0)
	var mu sync.Mutex
	handled := map[string]int{}
	h := func(ctx context.Context, r *kgo.Record) error {
		if propagation.FromContext(ctx).Run != kinds[slkafka.MessageID(r)] {
			t.Errorf("%s handled under %v", r.Value, propagation.FromContext(ctx))
		}
		mu.Lock()
		handled[slkafka.MessageID(r)]++
		mu.Unlock()
		return nil
	}
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"old", "orders", migrate.Old}, {"new", "payments", migrate.New}} {
		cons, err := s.Consumer(c.group, []string{c.topic}, slkafka.Migrating(rd, c.side, h), kgo.SeedBrokers(addrs...))
		if err != nil {
			t.Fatal(err)
		}
		runConsumer(t, cons)
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
}
