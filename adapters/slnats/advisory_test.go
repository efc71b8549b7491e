package slnats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
)

// A message whose last delivery is never settled by the consumer (its
// handler is stuck past the ack wait, as in a crash) is dropped by the
// server after MaxDeliver deliveries. On the loopback NATS it reaches the
// refusal callback through the max-deliveries advisory, exactly once,
// with its mark (production and marked), and never vanishes; the stuck
// handler's late return and a buffered later delivery do not refuse or
// handle it again, and other messages keep flowing on the other side.
func TestMaxDeliveriesAdvisoryReachesRefused(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
	testenv.Need(t, "NATS", addr)
	url := "nats://" + addr
	p := "buses" + uniq()
	stream := strings.ToUpper(p)
	subj := p + ".orders.created"

	released := map[string]chan struct{}{"stuck-P": make(chan struct{}), "stuck-M": make(chan struct{})}
	var (
		mu      sync.Mutex
		refused = map[string][]error{}
		marks   = map[string]propagation.Mark{}
		handled = map[string]int{}
		once    = map[string]*sync.Once{"stuck-P": {}, "stuck-M": {}}
	)
	s := newShadow(t, slnats.WithShadowSubjects(p+".orders.>"), slnats.WithRefused(func(ctx context.Context, m *natsgo.Msg, err error) {
		mu.Lock()
		refused[string(m.Data)] = append(refused[string(m.Data)], err)
		marks[string(m.Data)] = propagation.FromContext(ctx)
		mu.Unlock()
		if o, ok := once[string(m.Data)]; ok {
			o.Do(func() { close(released[string(m.Data)]) })
		}
	}))
	nc := connect(t, url)
	js := jetStream(t, nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{p + ".orders.>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), stream)
		js.DeleteStream(context.Background(), s.StreamName(stream))
	})
	if _, err := s.CreateShadowStream(ctx, js, stream); err != nil {
		t.Fatal(err)
	}
	attempts := map[string]int{}
	cons, err := s.ConsumeJetStream(ctx, js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2, AckWait: time.Second}, func(ctx context.Context, msg jetstream.Msg) error {
		id := string(msg.Data())
		mu.Lock()
		attempts[id]++
		a := attempts[id]
		mu.Unlock()
		if c, ok := released[id]; ok {
			if a == 1 {
				// Stuck past two ack waits: the server redelivers, then
				// drops the message and publishes its advisory.
				select {
				case <-c:
				case <-time.After(30 * time.Second):
				}
			}
			return errors.New("stuck, then failing")
		}
		mu.Lock()
		handled[id]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Stop()
	pub := s.JetStream(js)
	lt := propagation.With(ctx, propagation.Mark{Run: "r1", Env: "proj-a"})
	if _, err := pub.Publish(ctx, subj, []byte("stuck-P")); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(lt, subj, []byte("stuck-M")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := pub.Publish(lt, subj, fmt.Appendf(nil, "m-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for id, c := range released {
		select {
		case <-c:
		case <-time.After(40 * time.Second):
			t.Fatalf("%s: dropped by the server but never reached the refusal callback", id)
		}
	}
	// After the drop, messages flow as before.
	for i := range 20 {
		if _, err := pub.Publish(lt, subj, fmt.Appendf(nil, "n-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Settle: the stuck handlers return, buffered redeliveries come by.
	waitConsumersIdle(t, js, stream, s.StreamName(stream), []string{"work"}, []string{"work_shadow"})
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	for id := range released {
		if len(refused[id]) != 1 || !errors.Is(refused[id][0], slnats.ErrDeliveriesExhausted) || handled[id] != 0 {
			t.Errorf("%s: refused %v, handled %d; want refused once with ErrDeliveriesExhausted", id, refused[id], handled[id])
		}
	}
	if m := marks["stuck-M"]; m.Run != "r1" || m.Env != "proj-a" {
		t.Errorf("refusal of the marked message lost its mark: %+v", m)
	}
	if m := marks["stuck-P"]; m.Run != "" {
		t.Errorf("refusal of the production message carries a run: %+v", m)
	}
	// The messages buffered behind the stuck handler may have outlived
	// their own ack waits and been dropped too: each is handled once or
	// refused once, never both, never twice.
	mRefused := 0
	for i := range 20 {
		id := fmt.Sprintf("m-%02d", i)
		if handled[id]+len(refused[id]) != 1 {
			t.Errorf("%s handled %d times, refused %d times", id, handled[id], len(refused[id]))
		}
		mRefused += len(refused[id])
		if id := fmt.Sprintf("n-%02d", i); handled[id] != 1 || len(refused[id]) != 0 {
			t.Errorf("%s handled %d times, refused %d times", id, handled[id], len(refused[id]))
		}
	}
	t.Logf("buffered behind the stuck handler: %d of 20 dropped by the server and refused once, the rest handled once", mRefused)
}
