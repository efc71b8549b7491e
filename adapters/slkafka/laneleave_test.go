package slkafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// A slow lane consumer whose env leaves the lanes stops taking records at
// once: it handles nothing produced after it left (the trunk takes those,
// each once), and it hands back what it has not committed: the trunk
// takes its backlog over from the lane group's committed offsets. Every
// proj-a record is handled exactly once overall, by the lane or by the
// trunk, none is lost, and the lane group's committed offsets (read with
// a plain admin client) end past the whole backlog.
func TestLaneLeavesStopsAndHandsBack(t *testing.T) {
	r := newLaneRig(t, true)
	lg, addrs := r.lg, r.addrs
	_, stopT := r.run(r.trunk, ledgerHandler(lg, "trunk", false))
	stopL := r.runStarted(r.lane, ledgerHandler(lg, "lane", true)) // slow: it falls behind
	before := r.produce("before-", 200)
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 30 }, func() string { return "the lane handled fewer than 30 records" })
	r.setListed(false) // proj-a leaves the lanes
	time.Sleep(100 * time.Millisecond)
	handledAtLeave := lg.Count("lane")
	after := r.produce("after-", 50)
	lg.WaitIDs(t, "the backlog and the records produced after the lane left", append(append([]string{}, before...), after...))
	time.Sleep(300 * time.Millisecond)
	// The lane comes back: it passes over what the trunk took while it was
	// away (the hand-over kept its start window open) and takes the new
	// records.
	r.setListed(true)
	back := r.produce("back-", 20)
	lg.WaitIDs(t, "the returning lane's new records", back)
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
		t.Errorf("%d records handled twice", d)
	}
	handedOver, byLane := first["trunk"], first["lane"]
	if handedOver == 0 {
		t.Errorf("the trunk took none of the lane's backlog (the lane handled %d of 200 before leaving)", byLane)
	}
	if byLane >= 200 || byLane > handledAtLeave+1 {
		t.Errorf("the lane kept taking records after it left: %d handled, %d when it left", byLane, handledAtLeave)
	}
	// broker side: the lane's group committed past the whole backlog
	at := committedAt(t, addrs, "svc-proj-a")
	if at < 200 {
		t.Errorf("lane group committed offset %d after the hand-over, want past the 200 records of the backlog", at)
	}
	t.Logf("slow lane handled %d of 200 before leaving; the trunk took over the other %d (lane group committed offset %d)", byLane, handedOver, at)
}

// A record with a malformed mark, and one with a run mark on the
// production topic (an anomaly), reach WithRefused once, from the trunk,
// although the trunk and a lane group both read them; neither is handled.
func TestRefusedOnceAcrossGroups(t *testing.T) {
	addrs := newCluster(t)
	lg := bustest.NewLedger()
	refusedBy := func(who string) slkafka.Option {
		return slkafka.WithRefused(func(ctx context.Context, r *kgo.Record, err error) error {
			lg.Refuse(string(r.Value), fmt.Errorf("%s: %w", who, err))
			return nil
		})
	}
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), refusedBy("trunk"))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithEnv("proj-a"), refusedBy("lane"))
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	tc, err := trunk.Consumer("svc", []string{"orders"}, ledgerHandler(lg, "trunk", false), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, ledgerHandler(lg, "lane", false), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	raw := newClient(t, addrs)
	for _, r := range []*kgo.Record{
		{Topic: "orders", Value: []byte("malformed"), Headers: []kgo.RecordHeader{{Key: "X-Shadowlane-Env", Value: []byte("proj a")}}},
		{Topic: "orders", Value: []byte("conflict"), Headers: []kgo.RecordHeader{{Key: "X-Shadowlane-Env", Value: []byte("proj-a")}, {Key: "x-SHADOWLANE-env", Value: []byte("proj-b")}}},
		{Topic: "orders", Value: []byte("forged"), Headers: []kgo.RecordHeader{{Key: "x-shadowlane-run", Value: []byte("evil")}, {Key: "X-Shadowlane-Env", Value: []byte("proj-a")}}},
		{Topic: "orders", Value: []byte("last"), Headers: []kgo.RecordHeader{{Key: "X-Shadowlane-Env", Value: []byte("proj-a")}}},
	} {
		if err := raw.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The control record, after the others on the one partition: the trunk
	// (no lanes configured) and the lane both handle it.
	bustest.Wait(t, 30*time.Second, func() bool { return len(lg.Handled("last")) >= 2 }, func() string {
		return fmt.Sprintf("the control record was handled %d times, want 2 (trunk and lane)", len(lg.Handled("last")))
	})
	time.Sleep(200 * time.Millisecond) // late refusals or handlings, if any
	stopL()
	stopT()
	for _, v := range []string{"malformed", "conflict", "forged"} {
		rs, hs := lg.Refused(v), lg.Handled(v)
		if len(rs) != 1 || len(hs) != 0 || !strings.HasPrefix(rs[0].Error(), "trunk: ") {
			t.Errorf("%s: refused %v, handled %+v; want refused once, by the trunk, never handled", v, rs, hs)
		}
	}
	if dups, first := lg.Check(t, []string{"last"}, "trunk|lane", "", "proj-a"); dups != 1 || first["trunk"]+first["lane"] != 1 || lg.Count("trunk") != 1 || lg.Count("lane") != 1 {
		t.Errorf("the control record was handled %+v, want once by the trunk and once by the lane", lg.Handled("last"))
	}
}
