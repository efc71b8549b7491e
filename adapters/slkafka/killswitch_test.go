package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// The kill switch toggled mid-stream: marked records produced while load
// tests are off are not handled (not committed) until the switch is on
// again; then each is handled exactly once. Production records flow all the
// time.
func TestKillSwitchHoldsMarkedRecords(t *testing.T) {
	addrs := fakeCluster(t, 3, "orders", "orders_shadow").ListenAddrs()
	rt := bustest.SwitchRuntime(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithRuntime(rt))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	h := func(ctx context.Context, r *kgo.Record) error {
		sw.Handle(ctx, string(r.Value))
		return nil
	}
	cons, err := s.Consumer("svc", []string{"orders"}, h, kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons)
	produce := func(ctx context.Context, prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "%d", i), Value: fmt.Appendf(nil, "%s%03d", prefix, i)}).FirstErr(); err != nil {
				t.Error(err)
				return
			}
		}
	}
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	// mid-stream: a producer runs across both flips
	var wg sync.WaitGroup
	wg.Go(func() { produce(lt, "stream-", 300) })
	produce(lt, "a-", 30)
	produce(context.Background(), "pa-", 10)
	sw.WaitFor(t, "a-", 30)

	sw.Flip(func() { rt.SetLoadTest(false, "test") })
	produce(lt, "off-", 40)
	produce(context.Background(), "poff-", 10)
	sw.WaitFor(t, "poff-", 10) // production flows while off
	time.Sleep(500 * time.Millisecond)
	if d, _ := sw.Count("off-"); d != 0 {
		t.Fatalf("%d marked records produced while off were handled while off", d)
	}
	wg.Wait()
	sw.Flip(func() { rt.SetLoadTest(true, "") })
	sw.WaitFor(t, "off-", 40)
	sw.WaitFor(t, "stream-", 300)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sw.Check(t, "stream-", 3, 30+10+40+10+300)
}

// Producer wrapper and hook together count a record once; the hook alone
// gives a typed error through ProduceError.
func TestHookCountsOnceAndTypesRefusals(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"))
	cl := newClient(t, addrs, kgo.WithHooks(s))
	p, err := s.Producer(cl)
	if err != nil {
		t.Fatal(err)
	}
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	before := shadow.Total(slkafka.Store, shadow.Redirect)
	if err := p.ProduceSync(lt, &kgo.Record{Topic: "orders"}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := shadow.Total(slkafka.Store, shadow.Redirect) - before; n != 1 {
		t.Fatalf("one record counted %d times", n)
	}
	r := &kgo.Record{Topic: "payments"}
	err = cl.ProduceSync(lt, r).FirstErr()
	if err == nil || errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatalf("raw error %v", err)
	}
	if err := slkafka.ProduceError(r, err); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatalf("ProduceError = %v", err)
	}
	if err := slkafka.ProduceError(&kgo.Record{Topic: "x"}, context.Canceled); err != context.Canceled {
		t.Fatal(err)
	}
}
