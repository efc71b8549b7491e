package slsarama_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// A late lane's start window (issue 18), on sarama: the lane joins (its
// start pinned at the newest offset) before it is listed; the trunk
// handles the messages produced for the lane's env in between. Once
// listed, the lane passes over every one of them (the trunk's, counted)
// and takes the later ones, which the trunk skipped. Each message is
// handled exactly once; on the code before, the lane handled the early
// ones a second time.
func TestLateLaneStartWindow(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{})
	newS := func(opts ...slsarama.Option) *slsarama.Shadow {
		s, err := slsarama.New(append([]slsarama.Option{slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&lanes)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	trunk, lane := newS(), newS(slsarama.WithEnv("proj-a"))
	lg := bustest.NewLedger()
	ccfg := config()
	ccfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	ccfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	tc, err := trunk.Consumer(addrs, ccfg, "svc", []string{"orders"}, ledgerHandler(lg, "trunk"))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer(addrs, ccfg, "svc", []string{"orders"}, ledgerHandler(lg, "lane"))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	stopT := startRun(t, tc)
	stopL := startRun(t, lc)
	waitStable(t, adm, "svc", 1)
	waitStable(t, adm, "svc-proj-a", 1)
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	produce := func(prefix string, n int) []string {
		msgs, ids := make([]*sarama.ProducerMessage, n), make([]string, n)
		for i := range msgs {
			ids[i] = fmt.Sprintf("%s%03d", prefix, i)
			msgs[i] = &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(ids[i])}
			if err := trunk.Prepare(marked("", "proj-a"), msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	const n = 100
	early := produce("early-", n) // the lane is not listed yet: the trunk's
	lg.WaitIDs(t, "the trunk handles the early messages", early)
	time.Sleep(300 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	late := produce("late-", n)
	lg.WaitIDs(t, "the lane handles the late messages", late)
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	de, _ := lg.Check(t, early, "trunk", "", "proj-a") // the trunk's, once
	dl, _ := lg.Check(t, late, "lane", "", "proj-a")   // the lane's, once
	if de+dl != 0 {
		t.Errorf("%d messages handled twice", de+dl)
	}
	if st := lane.Stats(); st.StartSkipped != n {
		t.Errorf("the lane counted %d messages passed over in its start window, want %d", st.StartSkipped, n)
	}
	t.Logf("start window: the trunk handled %d early messages, the lane passed over %d of them and handled the %d late ones", n, lane.Stats().StartSkipped, n)
}

// A sarama lane that leaves and comes back passes over the messages the
// trunk took while it was away (it reopens its start window when it
// leaves); on the code before, it handled them a second time.
func TestLaneReturnsAfterLeaving(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	newS := func(opts ...slsarama.Option) *slsarama.Shadow {
		s, err := slsarama.New(append([]slsarama.Option{slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&lanes)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	trunk, lane := newS(), newS(slsarama.WithEnv("proj-a"))
	lg := bustest.NewLedger()
	ccfg := config()
	ccfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	ccfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	tc, err := trunk.Consumer(addrs, ccfg, "svc", []string{"orders"}, ledgerHandler(lg, "trunk"))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer(addrs, ccfg, "svc", []string{"orders"}, ledgerHandler(lg, "lane"))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	stopT := startRun(t, tc)
	stopL := startRun(t, lc)
	waitStable(t, adm, "svc", 1)
	waitStable(t, adm, "svc-proj-a", 1)
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	produce := func(prefix string) []string {
		msgs, ids := make([]*sarama.ProducerMessage, 50), make([]string, 50)
		for i := range msgs {
			ids[i] = fmt.Sprintf("%s%03d", prefix, i)
			msgs[i] = &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(ids[i])}
			if err := trunk.Prepare(marked("", "proj-a"), msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	first := produce("first-")
	lg.WaitIDs(t, "the lane handles the first messages", first)
	time.Sleep(300 * time.Millisecond)
	lanes.Store(envtag.StaticLanes{}) // the lane leaves
	away := produce("away-")
	lg.WaitIDs(t, "the trunk handles the messages while the lane is away", away)
	time.Sleep(300 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	back := produce("back-")
	lg.WaitIDs(t, "the lane handles the messages after it came back", back)
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	d1, _ := lg.Check(t, first, "lane", "", "proj-a")
	d2, _ := lg.Check(t, away, "trunk", "", "proj-a") // taken while the lane was away
	d3, _ := lg.Check(t, back, "lane", "", "proj-a")
	if d := d1 + d2 + d3; d != 0 {
		t.Errorf("%d messages handled twice", d)
	}
	t.Logf("the returning lane passed over %d messages the trunk took while it was away", lane.Stats().StartSkipped)
}

// ledgerHandler records each message in lg as handled by who.
func ledgerHandler(lg *bustest.Ledger, who string) slsarama.MessageHandler {
	return func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		lg.Handle(string(msg.Value), who, propagation.FromContext(ctx))
		return nil
	}
}
