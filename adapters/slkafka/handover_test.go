package slkafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
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
	lg := bustest.NewLedger()
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	tc, err := trunk.Consumer("svc", []string{"orders"}, ledgerHandler(lg, "trunk", false), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, ledgerHandler(lg, "lane", true), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	const n = 150
	rs, ids := make([]*kgo.Record, n), make([]string, n)
	for i := range rs {
		ids[i] = fmt.Sprintf("lt-%03d", i)
		rs[i] = &kgo.Record{Topic: "orders", Value: []byte(ids[i])}
	}
	if err := p.ProduceSync(marked("r1", "proj-a"), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 20 }, func() string { return "the lane handled fewer than 20 records" })
	lanes.Store(envtag.StaticLanes{}) // proj-a leaves
	lg.WaitIDs(t, "after proj-a left", ids)
	time.Sleep(300 * time.Millisecond) // late duplicates, if any
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	dups, first := lg.Check(t, ids, "lane|trunk", "r1", "proj-a")
	if dups != 0 {
		t.Errorf("%d records handled twice", dups)
	}
	if first["trunk"] == 0 || first["lane"] == 0 {
		t.Errorf("lane handled %d, trunk took over %d: want both some", first["lane"], first["trunk"])
	}
	t.Logf("shadow side: slow lane handled %d of %d before leaving; the trunk took over %d", first["lane"], n, first["trunk"])
}

// ledgerHandler records each record in lg as handled by who (slow: after
// 10 ms, a lane that falls behind).
func ledgerHandler(lg *bustest.Ledger, who string, slow bool) slkafka.Handler {
	return func(ctx context.Context, r *kgo.Record) error {
		if slow {
			time.Sleep(10 * time.Millisecond)
		}
		lg.Handle(string(r.Value), who, propagation.FromContext(ctx))
		return nil
	}
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
	lg := bustest.NewLedger()
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
	stopT := runConsumer(t, consumer(trunk1, ledgerHandler(lg, "trunk", false)))
	lc := consumer(lane, ledgerHandler(lg, "lane", true))
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	p, err := trunk1.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	rs, ids := make([]*kgo.Record, n), make([]string, n)
	for i := range rs {
		ids[i] = fmt.Sprintf("a-%03d", i)
		rs[i] = &kgo.Record{Topic: "orders", Value: []byte(ids[i])}
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
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 20 }, func() string { return "the lane handled fewer than 20 records" })
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	lanes.Store(envtag.StaticLanes{}) // proj-a leaves while no trunk runs
	time.Sleep(200 * time.Millisecond)
	if atLeave := lg.Count("lane"); atLeave >= n {
		t.Fatalf("the lane handled all %d before it left: no backlog to hand over", n)
	}
	trunk2 := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&lanes))
	stopT2 := runConsumer(t, consumer(trunk2, ledgerHandler(lg, "trunk", false)))
	lg.WaitIDs(t, "after the trunk's restart", ids) // the restarted trunk hands the backlog over
	time.Sleep(300 * time.Millisecond)
	if err := stopT2(); err != nil {
		t.Fatal(err)
	}
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	dups, first := lg.Check(t, ids, "lane|trunk", "", "proj-a")
	if dups != 0 {
		t.Errorf("%d records handled twice", dups)
	}
	taken := first["trunk"]
	if st := trunk2.Stats(); st.HandedOver != int64(taken) || taken != n-first["lane"] || taken == 0 {
		t.Errorf("restarted trunk handed over %d (stats %d), lane handled %d of %d", taken, st.HandedOver, first["lane"], n)
	}
	if at := committedAt(t, addrs, "svc-proj-a"); at < n {
		t.Errorf("lane group committed %d after the hand-over, want %d", at, n)
	}
	t.Logf("lane handled %d of %d before leaving; the restarted trunk handed over %d", first["lane"], n, taken)
}
