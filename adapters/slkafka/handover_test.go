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
	r := newLaneRig(t, true, slkafka.WithShadowGroups("svc"))
	r.mark = propagation.Mark{Run: "r1", Env: "proj-a"}
	lg := r.lg
	_, stopT := r.run(r.trunk, ledgerHandler(lg, "trunk", false))
	stopL := r.runStarted(r.lane, ledgerHandler(lg, "lane", true))
	const n = 150
	ids := r.produce("lt-", n)
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 20 }, func() string { return "the lane handled fewer than 20 records" })
	r.setListed(false) // proj-a leaves
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

// laneRig is what the Kafka lane tests share: on a kfake cluster, a trunk
// and a proj-a lane Shadow on "orders" reading one lane list, consumers of
// group "svc" (the lane's group is "svc-proj-a"), one ledger, and the
// trunk's producer of proj-a records.
type laneRig struct {
	t           *testing.T
	addrs       []string
	opts        []slkafka.Option // every Shadow's, after the topic and the lane list
	lanes       envtag.SwapLanes
	lg          *bustest.Ledger
	trunk, lane *slkafka.Shadow
	p           *slkafka.Producer
	mark        propagation.Mark // what produce marks its records with: env proj-a
}

// newLaneRig returns a rig whose lane list holds proj-a (listed) or
// nothing; opts go to every Shadow it makes.
func newLaneRig(t *testing.T, listed bool, opts ...slkafka.Option) *laneRig {
	t.Helper()
	r := &laneRig{t: t, addrs: newCluster(t), opts: opts, lg: bustest.NewLedger(), mark: propagation.Mark{Env: "proj-a"}}
	r.setListed(listed)
	r.trunk, r.lane = r.shadow(), r.shadow(slkafka.WithEnv("proj-a"))
	p, err := r.trunk.Producer(newClient(t, r.addrs))
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

// setListed lists proj-a in the lanes of "svc", or lists nothing.
func (r *laneRig) setListed(listed bool) {
	if listed {
		r.lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	} else {
		r.lanes.Store(envtag.StaticLanes{})
	}
}

// shadow returns a new Shadow on "orders" reading the rig's lane list.
func (r *laneRig) shadow(opts ...slkafka.Option) *slkafka.Shadow {
	r.t.Helper()
	return newShadow(r.t, append(append([]slkafka.Option{slkafka.WithShadowTopics("orders"), slkafka.WithLanes(&r.lanes)}, r.opts...), opts...)...)
}

// run starts a consumer of group "svc" on "orders" through s (fetch wait
// 50 ms); stop returns Run's error.
func (r *laneRig) run(s *slkafka.Shadow, h slkafka.Handler) (c *slkafka.Consumer, stop func() error) {
	r.t.Helper()
	c, err := s.Consumer("svc", []string{"orders"}, h, kgo.SeedBrokers(r.addrs...), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		r.t.Fatal(err)
	}
	return c, runConsumer(r.t, c)
}

// runStarted is run, waiting until the consumer started.
func (r *laneRig) runStarted(s *slkafka.Shadow, h slkafka.Handler) (stop func() error) {
	r.t.Helper()
	c, stop := r.run(s, h)
	waitStarted(r.t, c, stop)
	return stop
}

// produce sends n records "<prefix>NNN" under the rig's mark through the
// trunk's producer and returns their values.
func (r *laneRig) produce(prefix string, n int) []string {
	r.t.Helper()
	rs, ids := make([]*kgo.Record, n), make([]string, n)
	for i := range rs {
		ids[i] = fmt.Sprintf("%s%03d", prefix, i)
		rs[i] = &kgo.Record{Topic: "orders", Value: []byte(ids[i])}
	}
	if err := r.p.ProduceSync(propagation.With(context.Background(), r.mark), rs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
	return ids
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
	r := newLaneRig(t, true)
	lg, addrs := r.lg, r.addrs
	_, stopT := r.run(r.trunk, ledgerHandler(lg, "trunk", false))
	stopL := r.runStarted(r.lane, ledgerHandler(lg, "lane", true))
	const n = 200
	ids := r.produce("a-", n)
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
	r.setListed(false) // proj-a leaves while no trunk runs
	time.Sleep(200 * time.Millisecond)
	if atLeave := lg.Count("lane"); atLeave >= n {
		t.Fatalf("the lane handled all %d before it left: no backlog to hand over", n)
	}
	trunk2 := r.shadow()
	_, stopT2 := r.run(trunk2, ledgerHandler(lg, "trunk", false))
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
