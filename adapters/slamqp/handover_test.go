package slamqp_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// waitQueuesEmpty waits until the broker holds no message (ready or
// unacknowledged) in any of queues.
func waitQueuesEmpty(t *testing.T, conn *amqp091.Connection, queues ...string) {
	t.Helper()
	ch := channel(t, conn)
	deadline := time.Now().Add(20 * time.Second)
	for _, q := range queues {
		for {
			qi, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if qi.Messages == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker: %s still holds %d messages", q, qi.Messages)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestLaneHandOverRabbitMQ: a slow proj-a lane falls behind (its queue
// holds what the trunk passed on and it has not handled); proj-a is
// removed from the lanes; the lane hands back what it holds and stops,
// and the trunk takes the lane queue's backlog over: every proj-a message
// is handled exactly once, by the lane or by the trunk, and those sent
// after the drop by the trunk, which restarted at the drop (it finds the
// lane queue with a probe). Broker side: every queue drains, and audit
// queues show each message routed once.
func TestLaneHandOverRabbitMQ(t *testing.T) {
	admin := dial(t)
	p := "mqbus" + uniq()
	x, q := p+".orders", p+".work"
	audit := p + ".audit"
	cleanup(t, admin, []string{q, q + "_shadow", q + "-proj-a", q + "-proj-a_shadow", audit}, []string{x, x + "_shadow"})
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{q: {"proj-a"}})
	opts := []slamqp.Option{slamqp.WithShadowExchanges(x), slamqp.WithShadowQueues(q), slamqp.WithLanes(&lanes)}
	trunk := newShadow(t, opts...)
	lane := newShadow(t, append(opts, slamqp.WithEnv("proj-a"))...)
	topo := slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: x, Kind: "topic"}},
		Queues:    []slamqp.Queue{{Name: q}},
		Bindings:  []slamqp.Binding{{Queue: q, Exchange: x, Key: "order.#"}},
	}
	raw := channel(t, admin)
	if err := trunk.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if err := lane.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.QueueDeclare(audit, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueueBind(audit, "#", x, false, nil); err != nil {
		t.Fatal(err)
	}

	lg := bustest.NewLedger()
	var dropped atomic.Bool
	var laneAfterDrop atomic.Int64
	handler := func(who string, delay time.Duration) slamqp.Handler {
		return func(ctx context.Context, d *amqp091.Delivery) error {
			if delay > 0 {
				time.Sleep(delay)
			}
			if who == "lane" && dropped.Load() {
				laneAfterDrop.Add(1)
			}
			if d.Exchange == "" || d.RoutingKey != "order.created" {
				t.Errorf("%s got %s from exchange %q key %q", who, d.Body, d.Exchange, d.RoutingKey)
			}
			lg.Handle(string(d.Body), who, propagation.FromContext(ctx))
			return nil
		}
	}
	tc := startConsumer(t, trunk, q, handler("trunk", 0))
	lc := startConsumer(t, lane, q, handler("lane", 15*time.Millisecond))
	defer lc.stop()

	pub := trunk.Channel(channel(t, admin))
	ctx := context.Background()
	send := func(ctx context.Context, id string) {
		t.Helper()
		if err := pub.PublishWithContext(ctx, x, "order.created", false, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	envA := propagation.With(ctx, propagation.Mark{Env: "proj-a"})
	marked := propagation.With(ctx, propagation.Mark{Run: "r1", Env: "proj-a"})
	var before, after, prod []string
	const n = 200
	for i := range n {
		a, m, pr := fmt.Sprintf("A-%04d", i), fmt.Sprintf("M-%04d", i), fmt.Sprintf("P-%04d", i)
		send(envA, a)
		send(marked, m)
		send(ctx, pr)
		before, prod = append(before, a, m), append(prod, pr)
	}
	lg.WaitIDs(t, "production", prod)
	bustest.Wait(t, 30*time.Second, func() bool { return lg.Count("lane") >= 20 }, func() string { return "the lane handled nothing" })
	// The trunk restarts at the drop, as a new process (a new Shadow): it
	// knows nothing of the lane queue until it handles a proj-a message
	// and probes it.
	if err := tc.stop(); err != nil {
		t.Fatal(err)
	}
	lanes.Store(envtag.StaticLanes{})
	dropped.Store(true)
	trunk2 := newShadow(t, opts...)
	tc2 := startConsumer(t, trunk2, q, handler("trunk", 0))
	defer tc2.stop()
	byLaneAtDrop := lg.Count("lane")
	for i := n; i < n+50; i++ {
		a, m := fmt.Sprintf("A-%04d", i), fmt.Sprintf("M-%04d", i)
		send(envA, a)
		send(marked, m)
		after = append(after, a, m)
	}
	lg.WaitIDs(t, "proj-a", append(append([]string{}, before...), after...))
	waitQueuesEmpty(t, admin, q, q+"_shadow", q+"-proj-a", q+"-proj-a_shadow")
	time.Sleep(300 * time.Millisecond) // late duplicates, if any

	// Broker side: the production exchange routed each id once (the
	// audit queue), and passing on added no copy there.
	routed := map[string]int{}
	for _, d := range get(t, channel(t, admin), audit) {
		routed[string(d.Body)]++
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
	for _, id := range before {
		if id[0] == 'A' && routed[id] != 1 {
			t.Errorf("broker: %s routed %d times to the production exchange's audit queue", id, routed[id])
		}
	}
	if la := laneAfterDrop.Load(); la > 2 {
		t.Errorf("the lane handled %d messages after it was dropped", la)
	}
	if byLane < byLaneAtDrop || byLane >= len(before) {
		t.Errorf("lane handled %d (at the drop %d) of %d: it was not behind", byLane, byLaneAtDrop, len(before))
	}
	st, st2 := trunk.Stats(), trunk2.Stats()
	if st2.HandedOver != int64(len(before)-byLane) || st.Forwarded < int64(len(before)) || st2.Forwarded != 0 {
		t.Errorf("stats %+v, after the restart %+v: want %d handed over, at least %d passed on before the drop, none after", st, st2, len(before)-byLane, len(before))
	}
	t.Logf("rabbitmq hand-over: %d proj-a messages before the drop (lane %d, trunk %d by hand-over), %d after (trunk); 0 lost, 0 twice; trunk stats %+v, after its restart %+v",
		len(before), byLane, len(before)-byLane, len(after), st, st2)
}
