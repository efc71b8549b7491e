package slsarama_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Dual read between two topics (kfake) through sarama: every message is
// written to both through the adapter's rule (marked ones to both shadow
// twins, with the id header), the consumers of both sides run through one
// Reader, and each message is handled once under its mark.
func TestMigrationDualRead(t *testing.T) {
	addrs := newCluster(t)
	s, err := slsarama.New(slsarama.WithShadowTopics("orders", "payments"), slsarama.WithShadowGroups("old", "new"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	p := s.SyncProducer(sp)
	src := migrate.Fixed{Phase: migrate.DualRead, Topics: map[string]string{"orders": "payments"}}
	prod, err := migrate.NewProducer(src, p.Sender(), p.Sender())
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	kinds := map[string]string{}
	for i := range n {
		for _, run := range []string{"", "run-m"} {
			m := &migrate.Message{Value: []byte(fmt.Sprint(run, i))}
			if err := prod.Send(marked(run, ""), "orders", m); err != nil {
				t.Fatal(err)
			}
			kinds[m.ID] = run
		}
	}
	for topic, want := range map[string]string{"orders": "", "payments": "", "orders_shadow": "run-m", "payments_shadow": "run-m"} {
		vals, hdr := readAll(t, addrs, topic)
		if len(vals) != n {
			t.Fatalf("%s holds %d messages, want %d", topic, len(vals), n)
		}
		for _, v := range vals {
			if run, ok := kinds[hdr[v][migrate.HeaderID]]; !ok || run != want {
				t.Fatalf("%s: %q with headers %v, want only run %q", topic, v, hdr[v], want)
			}
		}
	}

	rd := migrate.NewReader(src, 0)
	var mu sync.Mutex
	handled := map[string]int{}
	h := func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		id := slsarama.MessageID(msg)
		if propagation.FromContext(ctx).Run != kinds[id] {
			t.Errorf("%s handled under %v", msg.Value, propagation.FromContext(ctx))
		}
		mu.Lock()
		handled[id]++
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"old", "orders", migrate.Old}, {"new", "payments", migrate.New}} {
		cons, err := s.Consumer(addrs, config(), c.group, []string{c.topic}, slsarama.Migrating(rd, c.side, h))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = cons.Run(ctx) })
	}
	waitFor(t, "every copy read", func() bool { st := rd.Stats(); return st.Handled+st.Duplicates >= 4*n })
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
