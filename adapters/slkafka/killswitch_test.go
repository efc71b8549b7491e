package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// tally counts, per record value, how often a handler saw it and whether
// any of those times fell while the switch was off.
type tally struct {
	mu      sync.Mutex
	n       map[string]int
	whileOf map[string]bool
}

func newTally() *tally { return &tally{n: map[string]int{}, whileOf: map[string]bool{}} }

func (t *tally) add(v string, off bool) {
	t.mu.Lock()
	t.n[v]++
	if off {
		t.whileOf[v] = true
	}
	t.mu.Unlock()
}

func (t *tally) count(prefix string) (distinct, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for v, n := range t.n {
		if len(v) >= len(prefix) && v[:len(prefix)] == prefix {
			distinct++
			total += n
		}
	}
	return
}

func (t *tally) waitFor(tb testing.TB, prefix string, n int) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if d, _ := t.count(prefix); d >= n {
			return
		}
		if time.Now().After(deadline) {
			d, tot := t.count(prefix)
			tb.Fatalf("%s: handled %d distinct (%d in all), want %d", prefix, d, tot, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testRuntime(t testing.TB) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "bus-test", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// The kill switch toggled mid-stream: marked records produced while load
// tests are off are not handled (not committed) until the switch is on
// again; then each is handled exactly once. Production records flow all the
// time.
func TestKillSwitchHoldsMarkedRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders", "orders_shadow"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	rt := testRuntime(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithRuntime(rt))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	tl := newTally()
	var gate sync.RWMutex // held by the switch flip, so a handler is never mid-flight across it
	h := func(ctx context.Context, r *kgo.Record) error {
		gate.RLock()
		defer gate.RUnlock()
		on, _ := rt.LoadTestEnabled()
		tl.add(string(r.Value), propagation.IsLoadTest(ctx) && !on)
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
	tl.waitFor(t, "a-", 30)

	gate.Lock()
	rt.SetLoadTest(false, "test")
	gate.Unlock()
	produce(lt, "off-", 40)
	produce(context.Background(), "poff-", 10)
	tl.waitFor(t, "poff-", 10) // production flows while off
	time.Sleep(500 * time.Millisecond)
	if d, _ := tl.count("off-"); d != 0 {
		t.Fatalf("%d marked records produced while off were handled while off", d)
	}
	wg.Wait()
	gate.Lock()
	rt.SetLoadTest(true, "")
	gate.Unlock()
	tl.waitFor(t, "off-", 40)
	tl.waitFor(t, "stream-", 300)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	// A record the adapter decided while the switch was on may start its
	// handler just after the flip (the switch stops new decisions; work
	// already decided completes, like an HTTP request admitted before it):
	// at most one per consumer goroutine, and only among the records that
	// were streaming across the flip. A switch that did not hold would let
	// most of the records streamed while it was off through.
	var straddled []string
	for v, n := range tl.n {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
		if tl.whileOf[v] {
			if strings.HasPrefix(v, "stream-") {
				straddled = append(straddled, v)
				continue
			}
			t.Errorf("%s handled while load tests were off", v)
		}
	}
	if len(straddled) > 3 {
		t.Errorf("%d records handled while load tests were off (at most 3 decided just before the flip may be): %v", len(straddled), straddled)
	} else if len(straddled) > 0 {
		t.Logf("%d records decided just before the flip were handled just after it: %v", len(straddled), straddled)
	}
	if len(tl.n) != 30+10+40+10+300 {
		t.Errorf("handled %d distinct records, want %d", len(tl.n), 390)
	}
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
