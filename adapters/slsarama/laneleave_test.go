package slsarama_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// laneRig is what the sarama lane tests share: on a kfake cluster, a
// trunk and a proj-a lane Shadow on "orders" reading one lane list,
// consumers of group "svc" (the lane's group is "svc-proj-a"), one
// ledger, a plain admin and a sync producer.
type laneRig struct {
	t           *testing.T
	addrs       []string
	lanes       envtag.SwapLanes
	lg          *bustest.Ledger
	adm         sarama.ClusterAdmin
	sp          sarama.SyncProducer
	trunk, lane *slsarama.Shadow
}

// newLaneRig returns a rig whose lane list holds proj-a (listed) or
// nothing.
func newLaneRig(t *testing.T, listed bool) *laneRig {
	t.Helper()
	r := &laneRig{t: t, addrs: newCluster(t), lg: bustest.NewLedger()}
	r.setListed(listed)
	r.trunk, r.lane = r.shadow(), r.shadow(slsarama.WithEnv("proj-a"))
	adm, err := sarama.NewClusterAdmin(r.addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adm.Close() })
	r.adm, r.sp = adm, syncProducer(t, r.addrs, config())
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
func (r *laneRig) shadow(opts ...slsarama.Option) *slsarama.Shadow {
	r.t.Helper()
	return newShadow(r.t, append([]slsarama.Option{slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&r.lanes)}, opts...)...)
}

// run starts a consumer of group "svc" on "orders" through s (fetch wait
// 50 ms, commits every 100 ms); stop returns Run's error.
func (r *laneRig) run(s *slsarama.Shadow, h slsarama.MessageHandler) (stop func() error) {
	r.t.Helper()
	cfg := config()
	cfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	c, err := s.Consumer(r.addrs, cfg, "svc", []string{"orders"}, h)
	if err != nil {
		r.t.Fatal(err)
	}
	return startRun(r.t, c)
}

// stable waits until the trunk's group and the lane's each have their
// one member.
func (r *laneRig) stable() {
	r.t.Helper()
	waitStable(r.t, r.adm, "svc", 1)
	waitStable(r.t, r.adm, "svc-proj-a", 1)
}

// produce sends n proj-a messages "<prefix>NNN" through the trunk's
// produce rule and returns their values.
func (r *laneRig) produce(prefix string, n int) []string {
	r.t.Helper()
	msgs, ids := make([]*sarama.ProducerMessage, n), make([]string, n)
	for i := range msgs {
		ids[i] = fmt.Sprintf("%s%03d", prefix, i)
		msgs[i] = &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(ids[i])}
		if err := r.trunk.Prepare(marked("", "proj-a"), msgs[i]); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.sp.SendMessages(msgs); err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// committed returns group's committed offset of orders/0, read with the
// plain admin (-1: none).
func (r *laneRig) committed(group string) int64 {
	offs, err := r.adm.ListConsumerGroupOffsets(group, map[string][]int32{"orders": {0}})
	if err != nil {
		return -1
	}
	if b := offs.GetBlock("orders", 0); b != nil {
		return b.Offset
	}
	return -1
}

// startRun runs c until stop; stop returns Run's error.
func startRun(t *testing.T, c *slsarama.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() { err = c.Run(ctx); close(done) }()
	stop = func() error { cancel(); <-done; return err }
	t.Cleanup(func() { stop() })
	return stop
}

// slow delays h by 10 ms a message: a lane that falls behind.
func slow(h slsarama.MessageHandler) slsarama.MessageHandler {
	return func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		time.Sleep(10 * time.Millisecond)
		return h(ctx, msg)
	}
}

// waitFor polls cond every 20 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 30 s", what)
		}
	}
}

// A slow sarama lane consumer that fell behind, whose env leaves the
// lanes, stops taking messages at once, commits what it handled and
// leaves its group; the trunk takes the lane's backlog over from the lane
// group's committed offsets, and takes what is produced after the leave
// itself. Every proj-a message is handled exactly once overall, none is
// lost; the lane group's committed offset (read with a plain admin) ends
// past the backlog. On the code before the hand-over the lane kept
// holding its claim and the backlog was stranded.
func TestLaneLeavesStopsAndHandsBack(t *testing.T) {
	r := newLaneRig(t, true)
	lg, trunk := r.lg, r.trunk
	stopT := r.run(trunk, ledgerHandler(lg, "trunk"))
	stopL := r.run(r.lane, slow(ledgerHandler(lg, "lane")))
	r.stable()
	before := r.produce("before-", 200)
	waitFor(t, "the lane handles 30", func() bool { return lg.Count("lane") >= 30 })
	r.setListed(false) // proj-a leaves the lanes
	time.Sleep(100 * time.Millisecond)
	handledAtLeave := lg.Count("lane")
	after := r.produce("after-", 50)
	lg.WaitIDs(t, "the backlog and the messages produced after the lane left", append(append([]string{}, before...), after...))
	time.Sleep(500 * time.Millisecond) // strays
	// The lane comes back: it passes over what the trunk took while it was
	// away (the hand-over kept its start window open) and takes the new
	// messages.
	r.setListed(true)
	back := r.produce("back-", 20)
	lg.WaitIDs(t, "the returning lane handles the new messages", back)
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	dB, first := lg.Check(t, before, "lane|trunk", "", "proj-a") // exactly once overall
	dA, _ := lg.Check(t, after, "trunk", "", "proj-a")           // the lane takes nothing after it left
	dR, _ := lg.Check(t, back, "lane", "", "proj-a")             // the returning lane's
	if d := dB + dA + dR; d != 0 {
		t.Errorf("%d messages handled twice", d)
	}
	handedOver, byLane := first["trunk"], first["lane"]
	if handedOver == 0 {
		t.Errorf("the trunk took none of the lane's backlog (the lane handled %d of 200 before leaving)", byLane)
	}
	if byLane > handledAtLeave+1 {
		t.Errorf("the lane kept taking messages after it left: %d handled, %d when it left", byLane, handledAtLeave)
	}
	if st := trunk.Stats(); st.HandedOver != int64(handedOver) {
		t.Errorf("trunk stats: handed over %d, the handler saw %d", st.HandedOver, handedOver)
	}
	// Broker side: the lane's group committed past the whole backlog.
	if at := r.committed("svc-proj-a"); at < 200 {
		t.Errorf("lane group committed %d after the hand-over, want past the 200 messages of the backlog", at)
	}
	t.Logf("slow sarama lane handled %d of 200 before leaving; the trunk took over the other %d", byLane, handedOver)
}

// The hand-over survives a trunk restart: the trunk skips a slow lane's
// messages (the spans travel in the metadata of its commits) and is
// stopped; the lane's env then leaves; a new trunk instance reads the
// spans back from the trunk group's committed metadata and hands the
// backlog over. Every message handled exactly once.
func TestHandOverSurvivesTrunkRestart(t *testing.T) {
	r := newLaneRig(t, true)
	lg, trunk1 := r.lg, r.trunk
	stopT := r.run(trunk1, ledgerHandler(lg, "trunk"))
	stopL := r.run(r.lane, slow(ledgerHandler(lg, "lane")))
	r.stable()
	const n = 200
	ids := r.produce("a-", n)
	waitFor(t, "the trunk commits past the lane's messages", func() bool { return r.committed("svc") >= n })
	waitFor(t, "the lane handles 20", func() bool { return lg.Count("lane") >= 20 })
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	r.setListed(false) // proj-a leaves while no trunk runs
	time.Sleep(300 * time.Millisecond)
	if atLeave := lg.Count("lane"); atLeave >= n {
		t.Fatalf("the lane handled all %d before it left: no backlog to hand over", n)
	}
	trunk2 := r.shadow()
	stopT2 := r.run(trunk2, ledgerHandler(lg, "trunk"))
	lg.WaitIDs(t, "after the trunk's restart", ids) // the restarted trunk hands the backlog over
	time.Sleep(500 * time.Millisecond)              // late duplicates, if any
	if err := stopT2(); err != nil {
		t.Fatal(err)
	}
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	dups, first := lg.Check(t, ids, "lane|trunk", "", "proj-a") // exactly once overall
	if dups != 0 {
		t.Errorf("%d messages handled twice", dups)
	}
	taken := first["trunk"]
	if st := trunk2.Stats(); st.HandedOver != int64(taken) || taken != n-first["lane"] || taken == 0 {
		t.Errorf("restarted trunk handed over %d (stats %d), lane handled %d of %d", taken, st.HandedOver, first["lane"], n)
	}
	if at := r.committed("svc-proj-a"); at < n {
		t.Errorf("lane group committed %d after the hand-over, want %d", at, n)
	}
	t.Logf("lane handled %d of %d before leaving; the restarted trunk handed over %d", first["lane"], n, taken)
}
