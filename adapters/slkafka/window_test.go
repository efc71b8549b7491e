package slkafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
)

// A late lane's start window (issue 18): the lane starts (its group
// pinned at the end) before it is listed; the records produced for its env
// in between are the trunk's, which handles them. Once listed, the lane
// reads them too (they lie after its pinned start) and passes over every
// one the trunk handled, counted, then takes the records the trunk skipped.
// Each record is handled exactly once; on the code before, the lane
// handled the early ones a second time.
func TestLateLaneStartWindow(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	var (
		mu  sync.Mutex
		byL = map[string]int{}
		byT = map[string]int{}
	)
	count := func(m map[string]int) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			mu.Lock()
			m[string(r.Value)]++
			mu.Unlock()
			return nil
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	tc, err := trunk.Consumer("svc", []string{"orders"}, count(byT), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, count(byL), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	produce := func(prefix string, n int) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "%s%03d", prefix, i)}
		}
		if err := p.ProduceSync(marked("", "proj-a"), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitCount := func(what string, m map[string]int, prefix string, n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			c := 0
			for v := range m {
				if strings.HasPrefix(v, prefix) {
					c++
				}
			}
			mu.Unlock()
			if c >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d", what, c, n)
			}
		}
	}
	const n = 100
	produce("early-", n) // the lane is not listed yet: the trunk's
	waitCount("the trunk handles the early records", byT, "early-", n)
	time.Sleep(200 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	produce("late-", n)
	waitCount("the lane handles the late records", byL, "late-", n)
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		e, l := fmt.Sprintf("early-%03d", i), fmt.Sprintf("late-%03d", i)
		if byT[e] != 1 || byL[e] != 0 {
			t.Errorf("%s handled by the trunk %d times and by the lane %d times, want the trunk once", e, byT[e], byL[e])
		}
		if byL[l] != 1 || byT[l] != 0 {
			t.Errorf("%s handled by the lane %d times and by the trunk %d times, want the lane once", l, byL[l], byT[l])
		}
	}
	if st := lane.Stats(); st.StartSkipped != n {
		t.Errorf("the lane counted %d records passed over in its start window, want %d", st.StartSkipped, n)
	}
	t.Logf("start window: the trunk handled %d early records, the lane passed over %d of them and handled the %d late ones", n, lane.Stats().StartSkipped, n)
}

// A lane that leaves and comes back passes over the records the trunk
// took while it was away: it reopens its start window when it leaves.
// On the code before, it resumed at its committed offsets and handled
// them a second time.
func TestLaneReturnsAfterLeaving(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	var (
		mu  sync.Mutex
		byL = map[string]int{}
		byT = map[string]int{}
	)
	count := func(m map[string]int) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			mu.Lock()
			m[string(r.Value)]++
			mu.Unlock()
			return nil
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	tc, err := trunk.Consumer("svc", []string{"orders"}, count(byT), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, count(byL), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	produce := func(prefix string) {
		rs := make([]*kgo.Record, 50)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "%s%03d", prefix, i)}
		}
		if err := p.ProduceSync(marked("", "proj-a"), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, m map[string]int, prefix string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			mu.Lock()
			c := 0
			for v := range m {
				if strings.HasPrefix(v, prefix) {
					c++
				}
			}
			mu.Unlock()
			if c >= 50 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of 50", what, c)
			}
		}
	}
	produce("first-")
	wait("the lane handles the first records", byL, "first-")
	time.Sleep(200 * time.Millisecond)
	lanes.Store(envtag.StaticLanes{}) // the lane leaves
	produce("away-")
	wait("the trunk handles the records while the lane is away", byT, "away-")
	time.Sleep(300 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	produce("back-")
	wait("the lane handles the records after it came back", byL, "back-")
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 50 {
		for _, c := range []struct {
			prefix string
			lane   int
		}{{"first-", 1}, {"away-", 0}, {"back-", 1}} {
			v := fmt.Sprintf("%s%03d", c.prefix, i)
			if byL[v] != c.lane || byT[v] != 1-c.lane {
				t.Errorf("%s handled by the lane %d times and by the trunk %d times, want the %s once", v, byL[v], byT[v], map[int]string{0: "trunk", 1: "lane"}[c.lane])
			}
		}
	}
	t.Logf("the returning lane passed over %d records the trunk took while it was away", lane.Stats().StartSkipped)
}

// A new lane's pinned start is no floor: the trunk, behind, meets records
// of the lane's env below the lane's pinned start before the lane is
// listed; it handles them (the lane never did). On the code that read any
// lane commit as a floor, the trunk passed over them and they were lost.
func TestPinnedStartIsNoFloor(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	var (
		mu  sync.Mutex
		byT = map[string]int{}
	)
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]*kgo.Record, 50)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "a-%03d", i)}
	}
	if err := p.ProduceSync(marked("", "proj-a"), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, func(context.Context, *kgo.Record) error { return nil }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL) // pinned at 50, not listed
	tc, err := trunk.Consumer("svc", []string{"orders"}, func(ctx context.Context, r *kgo.Record) error {
		mu.Lock()
		byT[string(r.Value)]++
		mu.Unlock()
		return nil
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(byT)
		mu.Unlock()
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trunk handled %d of the 50 records below the lane's pinned start (passed over: %d)", n, trunk.Stats().FloorSkipped)
		}
	}
	stopT()
	stopL()
	if st := trunk.Stats(); st.FloorSkipped != 0 {
		t.Errorf("the trunk passed over %d records below a pinned start", st.FloorSkipped)
	}
}
