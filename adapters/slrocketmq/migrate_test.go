package slrocketmq_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Dual read between two topics of the rmqfake fixture through the real
// client: every message is sent to both through the producer interceptor
// (marked ones to both shadow topics, with the id property), two push
// consumers (production and shadow groups) run through one Reader, and
// each message is handled once under its mark.
func TestMigrationDualRead(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow", "orders2", "orders2_shadow")
	s := newShadow(t, slrocketmq.WithShadowTopics("orders", "orders2"), slrocketmq.WithShadowGroups("oldg", "newg"), slrocketmq.WithRuntime(testRuntime(t)))
	p := newProducer(t, s, srv)
	src := migrate.Fixed{Phase: migrate.DualRead, Topics: map[string]string{"orders": "orders2"}}
	prod, err := migrate.NewProducer(src, slrocketmq.Sender(p), slrocketmq.Sender(p))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	kinds := map[string]string{}
	for i := range n {
		for _, run := range []string{"", "run-m"} {
			m := &migrate.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint(run, i))}
			if err := prod.Send(marked(run, ""), "orders", m); err != nil {
				t.Fatal(err)
			}
			kinds[m.ID] = run
		}
	}
	for topic, want := range map[string]string{"orders": "", "orders2": "", "orders_shadow": "run-m", "orders2_shadow": "run-m"} {
		ms := srv.Messages(topic)
		if len(ms) != n {
			t.Fatalf("%s holds %d messages, want %d", topic, len(ms), n)
		}
		for _, m := range ms {
			id := m.Properties[migrate.HeaderID]
			if run, ok := kinds[id]; !ok || run != want || m.Properties[bus.HeaderRun] != want {
				t.Fatalf("%s: message %q id %q run property %q, want run %q", topic, m.Body, id, m.Properties[bus.HeaderRun], want)
			}
		}
	}

	rd := migrate.NewReader(src, 0)
	var mu sync.Mutex
	handled := map[string]int{}
	h := func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			id := slrocketmq.MessageID(m)
			if propagation.FromContext(ctx).Run != kinds[id] {
				t.Errorf("%s handled under %v", m.Body, propagation.FromContext(ctx))
			}
			mu.Lock()
			handled[id]++
			mu.Unlock()
		}
		return consumer.ConsumeSuccess, nil
	}
	for _, c := range []struct {
		group, topic string
		side         migrate.Side
	}{{"oldg", "orders", migrate.Old}, {"newg", "orders2", migrate.New}} {
		pc, err := s.NewPushConsumer(c.group, consumerOpts(t, srv)...)
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Subscribe(c.topic, consumer.MessageSelector{}, slrocketmq.Migrating(rd, c.side, h)); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Shutdown() })
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
