package slrocketmq_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// A lane leaves with a backlog: while proj-a is listed live the trunk
// skips its messages, but the lane instance has stopped; when proj-a
// leaves the lanes the trunk runs the lane's groups itself and handles
// the backlog and proj-a's later messages, each once, production and
// load-test alike; when the lane comes back the trunk lets its groups go
// and the lane handles what follows. Judged from the handlers and the
// broker: every message handled exactly once, nothing dead-lettered.
func TestLaneHandOver(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	rt := testRuntime(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}})
	opts := []slrocketmq.Option{slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"), slrocketmq.WithLanes(&lanes), slrocketmq.WithRuntime(rt)}
	trunk := newShadow(t, opts...)
	lane := newShadow(t, append(opts, slrocketmq.WithEnv("proj-a"))...)
	p := newProducer(t, trunk, srv)

	st := newSeen()
	tc := startConsumer(t, srv, trunk, st.handler(nil))
	startLane := func(sn *seen) *slrocketmq.PushConsumer { return startConsumer(t, srv, lane, sn.handler(nil)) }
	sl1 := newSeen()
	lc := startLane(sl1)

	var all []string
	send := func(phase string, n int) {
		t.Helper()
		for i := range n {
			for _, c := range []struct {
				tag string
				ctx context.Context
			}{{"t", context.Background()}, {"a", marked("", "proj-a")}, {"ra", marked("r1", "proj-a")}, {"rt", marked("r1", "")}} {
				body := fmt.Sprintf("%s-%s%02d", phase, c.tag, i)
				if _, err := p.SendSync(c.ctx, msg("orders", body)); err != nil {
					t.Fatal(err)
				}
				all = append(all, body)
			}
		}
	}
	handled := func(sns ...*seen) func() bool {
		return func() bool {
			for _, b := range all {
				n := 0
				for _, sn := range sns {
					n += len(sn.get(b))
				}
				if n == 0 {
					return false
				}
			}
			return true
		}
	}

	send("p1", 5) // the lane is live and running
	waitFor(t, "phase 1", handled(st, sl1))
	// The lane stops once its groups committed past phase 1: the client's
	// Shutdown persists offsets before its running callbacks finish, so a
	// message handled during Shutdown would be handled again by whoever
	// takes the group next (RocketMQ's at-least-once, not the hand-over's).
	waitFor(t, "the lane's commits", func() bool {
		return committed(srv, "billing-proj-a", "orders") == len(srv.Messages("orders")) &&
			committed(srv, "billing-proj-a_shadow", "orders_shadow") == len(srv.Messages("orders_shadow"))
	})
	if err := lc.Shutdown(); err != nil { // the lane instance stops...
		t.Fatal(err)
	}
	send("p2", 5) // ...while still listed live: the trunk skips proj-a's messages
	lanes.Store(envtag.StaticLanes{})
	send("p3", 5) // proj-a left
	waitFor(t, "the backlog handed over", handled(st, sl1))
	// (registered once its consumer started, which may already have handled them)
	waitFor(t, "proj-a adopted", func() bool { return slices.Equal(tc.Adopted(), []string{"proj-a"}) })

	waitFor(t, "the trunk's commits in the lane group", func() bool {
		return committed(srv, "billing-proj-a", "orders") == len(srv.Messages("orders")) &&
			committed(srv, "billing-proj-a_shadow", "orders_shadow") == len(srv.Messages("orders_shadow"))
	})
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}}) // the lane comes back
	waitFor(t, "the trunk lets the lane group go", func() bool { return len(tc.Adopted()) == 0 })
	sl2 := newSeen()
	startLane(sl2)
	send("p4", 5)
	waitFor(t, "phase 4", handled(st, sl1, sl2))

	for _, b := range all {
		nt, n1, n2 := len(st.get(b)), len(sl1.get(b)), len(sl2.get(b))
		if nt+n1+n2 != 1 {
			t.Errorf("%s handled %d times (trunk %d, lane %d, lane again %d)", b, nt+n1+n2, nt, n1, n2)
			continue
		}
		tag := b[3 : len(b)-2] // "p1-ra03" -> "ra"
		laneMsg := tag == "a" || tag == "ra"
		switch phase := b[:2]; {
		case !laneMsg && nt != 1:
			t.Errorf("%s (no env) not handled by the trunk", b)
		case laneMsg && phase == "p1" && n1 != 1, laneMsg && phase == "p4" && n2 != 1:
			t.Errorf("%s not handled by the live lane", b)
		case laneMsg && (phase == "p2" || phase == "p3") && nt != 1:
			t.Errorf("%s not handed over to the trunk", b)
		}
		if want := tag[0] == 'r'; want != (markOf(b, st, sl1, sl2).Run != "") {
			t.Errorf("%s handled under the wrong mark", b)
		}
	}
	for _, g := range []string{"billing", "billing_shadow", "billing-proj-a", "billing-proj-a_shadow"} {
		if n := len(srv.Messages("%DLQ%" + g)); n != 0 {
			t.Errorf("%d messages dead-lettered in %s", n, g)
		}
	}
}

func markOf(b string, sns ...*seen) propagation.Mark {
	for _, sn := range sns {
		if g := sn.get(b); len(g) > 0 {
			return g[0]
		}
	}
	return propagation.Mark{}
}

// A consumer that installs ConsumerInterceptor itself has no lane-group
// consumer to hand over to: for it the trunk's rule stays the plain one
// (it skips an env only while the env's lane is live), even when the same
// Shadow names hand-over envs.
func TestInterceptorKeepsPlainLaneRule(t *testing.T) {
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}})
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithLanes(&lanes), slrocketmq.WithHandoverEnvs("proj-b"))
	icp := s.ConsumerInterceptor()
	ctx := primitive.WithConsumerCtx(context.Background(), &primitive.ConsumeMessageContext{ConsumerGroup: "billing"})
	call := func(env string) bool {
		m := &primitive.MessageExt{Message: *msg("orders", "x", bus.HeaderEnv, env)}
		handled := false
		var h consumer.ConsumeResultHolder
		if err := icp(ctx, []*primitive.MessageExt{m}, &h, func(context.Context, any, any) error { handled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		return handled
	}
	if call("proj-a") {
		t.Fatal("the trunk took a message of a live lane")
	}
	if !call("proj-b") {
		t.Fatal("a hand-over env skipped by a plain interceptor")
	}
	lanes.Store(envtag.StaticLanes{})
	if !call("proj-a") {
		t.Fatal("the trunk skipped a message of a lane that left")
	}
}

// A lane listed live whose instance never ran (its group has no committed
// offset): when it leaves, the trunk reads the lane group from the second
// before the first message it skipped, so the skipped messages are handled
// once and what the trunk handled itself before is not handled again
// (although the consumer's options say consume from the first offset).
func TestHandOverWithoutLaneOffsets(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{})
	trunk := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"), slrocketmq.WithLanes(&lanes))
	p := newProducer(t, trunk, srv)
	st := newSeen()
	tc := startConsumer(t, srv, trunk, st.handler(nil))
	if _, err := p.SendSync(marked("", "proj-a"), msg("orders", "old-a")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old-a handled by the trunk", func() bool { return len(st.get("old-a")) == 1 })
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}}) // listed, but no lane instance runs
	time.Sleep(2100 * time.Millisecond)                    // the next messages are stored in a later second than old-a
	for i := range 3 {
		if _, err := p.SendSync(marked("", "proj-a"), msg("orders", fmt.Sprintf("new-a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the trunk past the new messages", func() bool { return committed(srv, "billing", "orders") == 4 })
	lanes.Store(envtag.StaticLanes{})
	waitFor(t, "the skipped messages handed over", func() bool {
		for i := range 3 {
			if len(st.get(fmt.Sprintf("new-a%d", i))) == 0 {
				return false
			}
		}
		return true
	})
	// (registered once its consumer started, which may already have handled them)
	waitFor(t, "proj-a adopted", func() bool { return slices.Equal(tc.Adopted(), []string{"proj-a"}) })
	time.Sleep(300 * time.Millisecond) // a second delivery would show by now
	for _, b := range []string{"old-a", "new-a0", "new-a1", "new-a2"} {
		if n := len(st.get(b)); n != 1 {
			t.Errorf("%s handled %d times, want once", b, n)
		}
	}
}

// Two trunk instances of one group, both naming the lane env with
// WithHandoverEnvs: neither takes proj-a's messages in the production
// group, both run the lane group once the lane left, and every message is
// handled once across the trunks and the lane. The test lets the two
// lane-group consumers settle before it sends: while queues move between
// members, RocketMQ redelivers what was not committed yet (at least once,
// as in any group that grows).
func TestHandOverTwoTrunks(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"billing": {"proj-a"}})
	opts := []slrocketmq.Option{slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"), slrocketmq.WithLanes(&lanes)}
	t1 := newShadow(t, append(opts, slrocketmq.WithHandoverEnvs("proj-a"))...)
	t2 := newShadow(t, append(opts, slrocketmq.WithHandoverEnvs("proj-a"))...)
	lane := newShadow(t, append(opts, slrocketmq.WithEnv("proj-a"))...)
	p := newProducer(t, t1, srv)
	s1, s2, sl := newSeen(), newSeen(), newSeen()
	c1 := startConsumer(t, srv, t1, s1.handler(nil))
	c2 := startConsumer(t, srv, t2, s2.handler(nil))
	waitFor(t, "both trunks members", func() bool { return len(srv.Members("billing")) == 2 })
	lc := startConsumer(t, srv, lane, sl.handler(nil))
	var all []string
	send := func(phase string) {
		for i := range 8 {
			for _, c := range []struct {
				tag string
				ctx context.Context
			}{{"t", context.Background()}, {"a", marked("", "proj-a")}, {"ra", marked("r1", "proj-a")}} {
				b := fmt.Sprintf("%s-%s%02d", phase, c.tag, i)
				if _, err := p.SendSync(c.ctx, msg("orders", b)); err != nil {
					t.Fatal(err)
				}
				all = append(all, b)
			}
		}
	}
	total := func(b string) int { return len(s1.get(b)) + len(s2.get(b)) + len(sl.get(b)) }
	done := func() bool {
		for _, b := range all {
			if total(b) == 0 {
				return false
			}
		}
		return true
	}
	send("p1")
	waitFor(t, "phase 1", done)
	waitFor(t, "the lane's commits", func() bool {
		return committed(srv, "billing-proj-a", "orders") == len(srv.Messages("orders")) &&
			committed(srv, "billing-proj-a_shadow", "orders_shadow") == len(srv.Messages("orders_shadow"))
	})
	lc.Shutdown()
	lanes.Store(envtag.StaticLanes{})
	waitFor(t, "both trunks run the lane group", func() bool {
		return len(c1.Adopted()) == 1 && len(c2.Adopted()) == 1 &&
			len(srv.Members("billing-proj-a")) == 2 && len(srv.Members("billing-proj-a_shadow")) == 2
	})
	time.Sleep(500 * time.Millisecond) // both rebalanced to two members
	send("p2")
	waitFor(t, "phase 2 handed over", done)
	time.Sleep(300 * time.Millisecond)
	for _, b := range all {
		if n := total(b); n != 1 {
			t.Errorf("%s handled %d times (trunk 1 %d, trunk 2 %d, lane %d)", b, n, len(s1.get(b)), len(s2.get(b)), len(sl.get(b)))
		}
	}
}
