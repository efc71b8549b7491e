package slkafka_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// A late lane's start window (issue 18): the lane starts (its group
// pinned at the end) before it is listed; the records produced for its env
// in between are the trunk's, which handles them. Once listed, the lane
// reads them too (they lie after its pinned start) and passes over every
// one the trunk handled, counted, then takes the records the trunk skipped.
// Each record is handled exactly once; on the code before, the lane
// handled the early ones a second time.
func TestLateLaneStartWindow(t *testing.T) {
	r := newLaneRig(t, false)
	lg, lane := r.lg, r.lane
	_, stopT := r.run(r.trunk, ledgerHandler(lg, "trunk", false))
	stopL := r.runStarted(lane, ledgerHandler(lg, "lane", false))
	const n = 100
	early := r.produce("early-", n) // the lane is not listed yet: the trunk's
	lg.WaitIDs(t, "the trunk handles the early records", early)
	time.Sleep(200 * time.Millisecond) // the trunk commits
	r.setListed(true)
	late := r.produce("late-", n)
	lg.WaitIDs(t, "the lane handles the late records", late)
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
		t.Errorf("%d records handled twice", de+dl)
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
	r := newLaneRig(t, true)
	lg, lane := r.lg, r.lane
	_, stopT := r.run(r.trunk, ledgerHandler(lg, "trunk", false))
	stopL := r.runStarted(lane, ledgerHandler(lg, "lane", false))
	first := r.produce("first-", 50)
	lg.WaitIDs(t, "the lane handles the first records", first)
	time.Sleep(200 * time.Millisecond)
	r.setListed(false) // the lane leaves
	away := r.produce("away-", 50)
	lg.WaitIDs(t, "the trunk handles the records while the lane is away", away)
	time.Sleep(300 * time.Millisecond) // the trunk commits
	r.setListed(true)
	back := r.produce("back-", 50)
	lg.WaitIDs(t, "the lane handles the records after it came back", back)
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
		t.Errorf("%d records handled twice", d)
	}
	t.Logf("the returning lane passed over %d records the trunk took while it was away", lane.Stats().StartSkipped)
}

// A new lane's pinned start is no floor: the trunk, behind, meets records
// of the lane's env below the lane's pinned start before the lane is
// listed; it handles them (the lane never did). On the code that read any
// lane commit as a floor, the trunk passed over them and they were lost.
func TestPinnedStartIsNoFloor(t *testing.T) {
	r := newLaneRig(t, false)
	lg, trunk := r.lg, r.trunk
	ids := r.produce("a-", 50)
	stopL := r.runStarted(r.lane, ledgerHandler(lg, "lane", false)) // pinned at 50, not listed
	_, stopT := r.run(trunk, ledgerHandler(lg, "trunk", false))
	bustest.Wait(t, 20*time.Second, func() bool { return lg.Ids() == len(ids) }, func() string {
		return fmt.Sprintf("the trunk handled %d of the 50 records below the lane's pinned start (passed over: %d)", lg.Ids(), trunk.Stats().FloorSkipped)
	})
	time.Sleep(200 * time.Millisecond) // late duplicates, if any
	stopT()
	stopL()
	if dups, _ := lg.Check(t, ids, "trunk", "", "proj-a"); dups != 0 { // the trunk's, once; the lane's start is past them
		t.Errorf("%d records handled twice", dups)
	}
	if st := trunk.Stats(); st.FloorSkipped != 0 {
		t.Errorf("the trunk passed over %d records below a pinned start", st.FloorSkipped)
	}
}
