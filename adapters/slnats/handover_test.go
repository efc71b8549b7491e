package slnats_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// mqbusJetStream connects to the loopback NATS and creates a stream (and
// its shadow twin, when s is given) and a lane bucket named after the
// test, all removed at the end.
func mqbusJetStream(t *testing.T) (url, p, stream, bucket string, js jetstream.JetStream) {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
	testenv.Need(t, "NATS", addr)
	url = "nats://" + addr
	p = "mqbus" + uniq()
	stream, bucket = strings.ToUpper(p), p+"_lanes"
	js = jetStream(t, connect(t, url))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{p + ".orders.>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), stream)
		js.DeleteStream(context.Background(), stream+"_shadow")
		js.DeleteKeyValue(context.Background(), bucket)
	})
	return url, p, stream, bucket, js
}

// TestLaneHandOverJetStream: a slow proj-a lane falls behind; proj-a is
// removed from the lanes; the lane stops taking messages and hands back
// what it holds, and the trunk takes the lane's backlog over: every
// proj-a message is handled exactly once, by the lane or by the trunk,
// and those sent after the drop by the trunk. Broker side: the lane's
// consumer holds nothing unacknowledged below the epoch's end, and the
// epochs record the hand-over.
func TestLaneHandOverJetStream(t *testing.T) {
	url, p, stream, bucket, ajs := mqbusJetStream(t)
	ctx := context.Background()
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"work": {"proj-a"}})
	lg := bustest.NewLedger()
	var laneErrs atomic.Int64
	opts := []slnats.Option{slnats.WithShadowSubjects(p + ".orders.>"), slnats.WithLanes(&lanes), slnats.WithLaneBucket(bucket),
		slnats.WithLaneErrors(func(err error) { laneErrs.Add(1); t.Logf("lane store: %v", err) })}
	trunk := newShadow(t, opts...)
	lane := newShadow(t, append(opts, slnats.WithEnv("proj-a"))...)
	if _, err := trunk.CreateShadowStream(ctx, ajs, stream); err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second}
	var laneAfterDrop atomic.Int64
	var dropped atomic.Bool
	handler := func(who string, delay time.Duration) slnats.JSHandler {
		return func(ctx context.Context, msg jetstream.Msg) error {
			if delay > 0 {
				time.Sleep(delay)
			}
			if who == "lane" && dropped.Load() {
				laneAfterDrop.Add(1)
			}
			lg.Handle(string(msg.Data()), who, propagation.FromContext(ctx))
			return nil
		}
	}
	jsT, _ := jetstream.New(connect(t, url))
	tc, err := trunk.ConsumeJetStream(ctx, jsT, stream, cfg, handler("trunk", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Stop()
	jsL, _ := jetstream.New(connect(t, url))
	lc, err := lane.ConsumeJetStream(ctx, jsL, stream, cfg, handler("lane", 15*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Stop()

	pub := trunk.JetStream(ajs)
	envA := propagation.With(ctx, propagation.Mark{Env: "proj-a"})
	marked := propagation.With(ctx, propagation.Mark{Run: "r1", Env: "proj-a"})
	var before, after, prod []string
	send := func(ctx context.Context, id string) {
		t.Helper()
		if _, err := pub.Publish(ctx, p+".orders.created", []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	const n = 200
	for i := range n {
		a, m, q := fmt.Sprintf("A-%04d", i), fmt.Sprintf("M-%04d", i), fmt.Sprintf("P-%04d", i)
		send(envA, a)
		send(marked, m)
		send(ctx, q)
		before, prod = append(before, a, m), append(prod, q)
	}
	// The trunk is through (production handled, proj-a skipped); the slow
	// lane is far behind.
	lg.WaitIDs(t, "production", prod)
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 20 }, func() string { return "the lane handled nothing" })
	lanes.Store(envtag.StaticLanes{})
	dropped.Store(true)
	byLaneAtDrop := lg.Count("lane")
	for i := n; i < n+50; i++ {
		a, m := fmt.Sprintf("A-%04d", i), fmt.Sprintf("M-%04d", i)
		send(envA, a)
		send(marked, m)
		after = append(after, a, m)
	}
	lg.WaitIDs(t, "proj-a", append(append([]string{}, before...), after...))
	time.Sleep(300 * time.Millisecond) // late duplicates, if any

	// Broker side: the lane's consumers hold nothing unacknowledged; the
	// epochs record the hand-over up to the epoch's end.
	kv, err := ajs.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range [][3]string{{stream, "work", "work-proj-a"}, {stream + "_shadow", "work_shadow", "work-proj-a_shadow"}} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			e, err := kv.Get(ctx, side[0]+"."+side[1]+".proj-a")
			if err != nil {
				t.Fatal(err)
			}
			ep, err := bus.ParseEpochs(string(e.Value()))
			if err != nil {
				t.Fatal(err)
			}
			cons, err := ajs.Consumer(ctx, side[0], side[2])
			if err != nil {
				t.Fatal(err)
			}
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ep.IsOpen() && !ep.Backlog() && info.NumAckPending == 0 {
				t.Logf("broker: %s epochs %s; lane consumer %s delivered %d, ack floor %d, pending %d", side[0], ep, side[2], info.Delivered.Stream, info.AckFloor.Stream, info.NumPending)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker: %s epochs %s, lane consumer ack pending %d", side[0], ep, info.NumAckPending)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	isA := func(id string) bool { return id[0] == 'A' }
	beforeA, beforeM := bustest.Split(before, isA)
	afterA, afterM := bustest.Split(after, isA)
	dA, firstA := lg.Check(t, beforeA, "lane|trunk", "", "proj-a")
	dM, firstM := lg.Check(t, beforeM, "lane|trunk", "r1", "proj-a")
	dAA, _ := lg.Check(t, afterA, "trunk", "", "proj-a") // sent after the drop
	dAM, _ := lg.Check(t, afterM, "trunk", "r1", "proj-a")
	if d := dA + dM + dAA + dAM; d != 0 {
		t.Errorf("%d messages handled twice", d)
	}
	byLane := firstA["lane"] + firstM["lane"]
	// The lane finishes at most what was in its handler when it saw the
	// drop (one per side).
	if la := laneAfterDrop.Load(); la > 2 {
		t.Errorf("the lane handled %d messages after it was dropped", la)
	}
	if byLane < byLaneAtDrop || byLane >= len(before) {
		t.Errorf("lane handled %d (at the drop %d) of %d: it was not behind", byLane, byLaneAtDrop, len(before))
	}
	t.Logf("jetstream hand-over: %d proj-a messages before the drop (lane %d, trunk %d by hand-over), %d after (trunk); 0 lost, 0 twice; lane store errors %d",
		len(before), byLane, len(before)-byLane, len(after), laneErrs.Load())
}
