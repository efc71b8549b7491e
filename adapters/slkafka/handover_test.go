package slkafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
)

// The hand-over on the shadow side: a slow proj-a lane consuming load-test
// records (shadow topic, shadow groups) leaves after some of them; the
// trunk takes the rest over from the lane's shadow group
// ("svc-proj-a_shadow"): every record handled exactly once overall.
func TestLaneLeavesHandsOverShadowBacklog(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		byL  = map[string]int{}
		byT  = map[string]int{}
		opts = []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	)
	count := func(m map[string]int, slow bool) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			if slow {
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			m[string(r.Value)]++
			mu.Unlock()
			return nil
		}
	}
	tc, err := trunk.Consumer("svc", []string{"orders"}, count(byT, false), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, count(byL, true), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	const n = 150
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "lt-%03d", i)}
	}
	if err := p.ProduceSync(marked("r1", "proj-a"), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	total := func() (lane, all int) {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			v := fmt.Sprintf("lt-%03d", i)
			if byL[v]+byT[v] > 0 {
				all++
			}
		}
		return len(byL), all
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l, _ := total(); l >= 20 {
			break
		}
	}
	lanes.Store(envtag.StaticLanes{}) // proj-a leaves
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, all := total(); all == n {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	taken := 0
	for i := range n {
		v := fmt.Sprintf("lt-%03d", i)
		if c := byL[v] + byT[v]; c != 1 {
			t.Errorf("%s handled %d times overall (lane %d, trunk %d), want exactly once", v, c, byL[v], byT[v])
		}
		taken += byT[v]
	}
	if taken == 0 || len(byL) == 0 {
		t.Errorf("lane handled %d, trunk took over %d: want both some", len(byL), taken)
	}
	t.Logf("shadow side: slow lane handled %d of %d before leaving; the trunk took over %d", len(byL), n, taken)
}

// committedAt reads group's committed offset of orders/0 with a plain
// admin client (-1: none).
func committedAt(t *testing.T, addrs []string, group string) int64 {
	t.Helper()
	offs, err := kadm.NewClient(newClient(t, addrs)).FetchOffsets(context.Background(), group)
	if err != nil {
		return -1
	}
	o, ok := offs.Lookup("orders", 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

// The hand-over survives a trunk restart (issue 16, the limit of session
// 4): the trunk skips a slow lane's records and is stopped; the lane's env
// then leaves (the lane stops with a backlog); a new trunk instance, which
// never skipped anything itself, reads the skipped spans back from the
// metadata of the trunk group's commit and hands the backlog over. Every
// record handled exactly once; on the code that kept the spans in memory
// only, the backlog was stranded.
func TestHandOverSurvivesTrunkRestart(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	var (
		mu  sync.Mutex
		byL = map[string]int{}
		byT = map[string]int{}
	)
	count := func(m map[string]int, slow bool) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			if slow {
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			m[string(r.Value)]++
			mu.Unlock()
			return nil
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	consumer := func(s *slkafka.Shadow, h slkafka.Handler) *slkafka.Consumer {
		c, err := s.Consumer("svc", []string{"orders"}, h, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	trunk1 := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	stopT := runConsumer(t, consumer(trunk1, count(byT, false)))
	lc := consumer(lane, count(byL, true))
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	p, err := trunk1.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "a-%03d", i)}
	}
	if err := p.ProduceSync(marked("", "proj-a"), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The trunk skipped (and committed past) all of them; the lane is
	// behind.
	for deadline := time.Now().Add(30 * time.Second); committedAt(t, addrs, "svc") < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the trunk never committed past the lane's records")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		l := len(byL)
		mu.Unlock()
		if l >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lane handled fewer than 20 records")
		}
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	lanes.Store(envtag.StaticLanes{}) // proj-a leaves while no trunk runs
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	atLeave := len(byL)
	mu.Unlock()
	if atLeave >= n {
		t.Fatalf("the lane handled all %d before it left: no backlog to hand over", n)
	}
	trunk2 := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	stopT2 := runConsumer(t, consumer(trunk2, count(byT, false)))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		all := 0
		for i := range n {
			v := fmt.Sprintf("a-%03d", i)
			if byL[v]+byT[v] > 0 {
				all++
			}
		}
		mu.Unlock()
		if all == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records handled: the restarted trunk did not hand the backlog over", all, n)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := stopT2(); err != nil {
		t.Fatal(err)
	}
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	taken := 0
	for i := range n {
		v := fmt.Sprintf("a-%03d", i)
		if c := byL[v] + byT[v]; c != 1 {
			t.Errorf("%s handled %d times (lane %d, trunk %d), want exactly once", v, c, byL[v], byT[v])
		}
		taken += byT[v]
	}
	if st := trunk2.Stats(); st.HandedOver != int64(taken) || taken != n-len(byL) {
		t.Errorf("restarted trunk handed over %d (stats %d), lane handled %d of %d", taken, st.HandedOver, len(byL), n)
	}
	if at := committedAt(t, addrs, "svc-proj-a"); at < n {
		t.Errorf("lane group committed %d after the hand-over, want %d", at, n)
	}
	t.Logf("lane handled %d of %d before leaving; the restarted trunk handed over %d", len(byL), n, taken)
}
