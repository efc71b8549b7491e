package slsarama_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// The kill switch toggled mid-stream (sarama): marked messages that arrive
// while load tests are off are not handled (not marked) until the switch is
// on again; then each is handled exactly once. Production flows all along.
func TestKillSwitchHoldsMarkedMessages(t *testing.T) {
	addrs := fakeCluster(t, 3, "orders", "orders_shadow").ListenAddrs()
	rt := bustest.SwitchRuntime(t)
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithShadowGroups("svc"), slsarama.WithRuntime(rt))
	sp := syncProducer(t, addrs, config())
	p := s.SyncProducer(sp)

	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	cons, err := s.Consumer(addrs, config(), "svc", []string{"orders"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		sw.Handle(ctx, string(msg.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	produce := func(ctx context.Context, prefix string, k int) {
		for i := range k {
			if _, _, err := p.SendMessage(ctx, &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprintf("%s%03d", prefix, i))}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	var wg sync.WaitGroup
	wg.Go(func() { produce(lt, "stream-", 200) })
	produce(lt, "a-", 20)
	sw.WaitFor(t, "a-", 20)
	sw.Flip(func() { rt.SetLoadTest(false, "test") })
	produce(lt, "off-", 30)
	produce(context.Background(), "poff-", 10)
	sw.WaitFor(t, "poff-", 10)
	time.Sleep(500 * time.Millisecond)
	if d, _ := sw.Count("off-"); d != 0 {
		t.Fatalf("%d marked messages produced while off were handled while off", d)
	}
	wg.Wait()
	sw.Flip(func() { rt.SetLoadTest(true, "") })
	sw.WaitFor(t, "off-", 30)
	sw.WaitFor(t, "stream-", 200)
	sw.Check(t, "stream-", 3, 260)
}

// A poison message is tried a bounded number of times, then refused once;
// it does not stop the consumer or starve the others. A run mark on the
// production topic is refused (an anomaly), never handled.
func TestRetryThenRefuse(t *testing.T) {
	addrs := newCluster(t)
	lg := bustest.NewLedger()
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithRetry(3, 5*time.Millisecond, 0),
		slsarama.WithRefused(func(ctx context.Context, msg *sarama.ConsumerMessage, err error) error {
			lg.Refuse(string(msg.Value), err)
			return nil
		}))
	sp := syncProducer(t, addrs, config())
	send := func(v string, hs ...sarama.RecordHeader) {
		if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(v), Headers: hs}); err != nil {
			t.Fatal(err)
		}
	}
	send("poison")
	send("forged", sarama.RecordHeader{Key: []byte("x-shadowlane-run"), Value: []byte("evil")})
	ok := make([]string, 20)
	for i := range ok {
		ok[i] = fmt.Sprintf("ok-%02d", i)
		send(ok[i])
	}
	c, err := s.Consumer(addrs, config(), "svc", []string{"orders"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		lg.Attempt(string(msg.Value))
		if string(msg.Value) == "poison" {
			return fmt.Errorf("always fails")
		}
		lg.Handle(string(msg.Value), "trunk", propagation.FromContext(ctx))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := runUntil(t, c, func() bool { return len(lg.Handled(ok[len(ok)-1])) > 0 }); err != nil {
		t.Fatal(err)
	}
	lg.RefusedOnce(t, slsarama.ErrRetriesExhausted, "poison")
	lg.RefusedOnce(t, shadow.ErrBlocked, "forged") // a run mark on production
	if a, f := lg.Attempts("poison"), lg.Attempts("forged"); a != 3 || f != 0 {
		t.Errorf("poison tried %d times (want 3), the forged mark %d times (want 0)", a, f)
	}
	if dups, _ := lg.Check(t, ok, "trunk", "", ""); dups != 0 { // after the poison, each once
		t.Errorf("%d messages handled twice", dups)
	}
}
