package slsarama_test

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
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
	r := newLaneRig(t, false)
	lg, trunk, lane := r.lg, r.trunk, r.lane
	stopT := r.run(trunk, ledgerHandler(lg, "trunk"))
	stopL := r.run(lane, ledgerHandler(lg, "lane"))
	r.stable()
	const n = 100
	early := r.produce("early-", n) // the lane is not listed yet: the trunk's
	lg.WaitIDs(t, "the trunk handles the early messages", early)
	time.Sleep(300 * time.Millisecond) // the trunk commits
	r.setListed(true)
	late := r.produce("late-", n)
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
	r := newLaneRig(t, true)
	lg, trunk, lane := r.lg, r.trunk, r.lane
	stopT := r.run(trunk, ledgerHandler(lg, "trunk"))
	stopL := r.run(lane, ledgerHandler(lg, "lane"))
	r.stable()
	first := r.produce("first-", 50)
	lg.WaitIDs(t, "the lane handles the first messages", first)
	time.Sleep(300 * time.Millisecond)
	r.setListed(false) // the lane leaves
	away := r.produce("away-", 50)
	lg.WaitIDs(t, "the trunk handles the messages while the lane is away", away)
	time.Sleep(300 * time.Millisecond) // the trunk commits
	r.setListed(true)
	back := r.produce("back-", 50)
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
