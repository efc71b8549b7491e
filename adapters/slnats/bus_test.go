package slnats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// jsSetup creates a production stream and its shadow twin for subjects
// <p>.orders.> and deletes both after the test.
func jsSetup(t *testing.T, url string, s *slnats.Shadow) (jetstream.JetStream, string, string) {
	t.Helper()
	return jsSetupNamed(t, url, s, uniq())
}

// jsSetupNamed is jsSetup with the subject prefix p (the stream is p in
// upper case).
func jsSetupNamed(t *testing.T, url string, s *slnats.Shadow, p string) (jetstream.JetStream, string, string) {
	t.Helper()
	nc := connect(t, url)
	js := jetStream(t, nc)
	stream := strings.ToUpper(p)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{p + ".orders.>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), stream)
		js.DeleteStream(context.Background(), s.StreamName(stream))
	})
	if _, err := s.CreateShadowStream(ctx, js, stream); err != nil {
		t.Fatal(err)
	}
	return js, stream, p + ".orders.created"
}

// The kill switch toggled mid-stream on JetStream: marked messages are not
// handled while load tests are off; each is handled exactly once after,
// promptly. Judged from the broker too: the messages the consumer had
// received when the switch went off stay pending with it (kept in progress
// past their ack wait) and none is ever redelivered, so none waits for its
// ack wait and none spends a delivery.
func TestJetStreamKillSwitch(t *testing.T) {
	const (
		ackWait = 4 * time.Second  // the switch stays off longer than this
		offFor  = 6 * time.Second  // how long the switch stays off (at least)
		prompt  = 15 * time.Second // bound for the held messages after the switch is back on
	)
	servers(t, func(t *testing.T, url string) {
		rt := bustest.SwitchRuntime(t)
		s := newShadow(t, slnats.WithAll(), slnats.WithRuntime(rt))
		js, stream, subj := jsSetupNamed(t, url, s, "nats7"+uniq())
		sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
		cons, err := s.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "nats7work", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait}, func(ctx context.Context, msg jetstream.Msg) error {
			sw.Handle(ctx, string(msg.Data()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop()
		if len(cons.Consumers) != 2 {
			t.Fatalf("consumers %v, want the production one and its shadow twin", cons.Consumers)
		}
		// The broker's view of the shadow consumer, read with a plain
		// client. Only marked messages are on the shadow stream, and the
		// consumer takes them all, so every delivery of a new message
		// moves both delivered sequences by one and a redelivery moves
		// the consumer's only.
		info := func() *jetstream.ConsumerInfo {
			t.Helper()
			c, err := js.Consumer(context.Background(), s.StreamName(stream), cons.Consumers[1])
			if err != nil {
				t.Fatal(err)
			}
			ci, err := c.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return ci
		}
		noRedelivery := func(when string, ci *jetstream.ConsumerInfo) {
			t.Helper()
			if ci.NumRedelivered != 0 || ci.Delivered.Consumer != ci.Delivered.Stream {
				t.Errorf("%s: redelivered %d pending, %d deliveries for %d messages: held messages were redelivered", when, ci.NumRedelivered, ci.Delivered.Consumer, ci.Delivered.Stream)
			}
		}
		pub := s.JetStream(js)
		publish := func(ctx context.Context, prefix string, n int) {
			for i := range n {
				if _, err := pub.Publish(ctx, subj, fmt.Appendf(nil, "%s%03d", prefix, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}
		lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range 10 {
				publish(lt, fmt.Sprintf("stream%d-", i), 20)
				time.Sleep(20 * time.Millisecond)
			}
		})
		publish(lt, "a-", 20)
		sw.WaitFor(t, "a-", 20)
		sw.Flip(func() { rt.SetLoadTest(false, "test") })
		off := time.Now()
		publish(lt, "off-", 30)
		publish(context.Background(), "poff-", 10)
		sw.WaitFor(t, "poff-", 10)
		wg.Wait()
		time.Sleep(time.Until(off.Add(offFor))) // past the ack wait of what the consumer holds
		if d, _ := sw.Count("off-"); d != 0 {
			t.Fatalf("%d marked messages were handled while off", d)
		}
		ci := info()
		if ci.NumAckPending == 0 {
			t.Errorf("while off: nothing pending with the consumer (%+v): the held message was settled", ci)
		}
		noRedelivery("while off", ci)
		sw.Flip(func() { rt.SetLoadTest(true, "") })
		on := time.Now()
		sw.WaitFor(t, "off-", 30)
		sw.WaitFor(t, "stream", 200)
		el := time.Since(on)
		t.Logf("held messages handled %v after the switch went back on", el.Round(time.Millisecond))
		if el > prompt {
			t.Errorf("held messages took %v after the switch went back on, want at most %v", el.Round(time.Millisecond), prompt)
		}
		time.Sleep(300 * time.Millisecond)
		sw.Check(t, "stream", 3, 260)
		ci = info()
		noRedelivery("after", ci)
		if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.AckFloor.Stream != 250 || ci.Delivered.Stream != 250 {
			t.Errorf("after: ack pending %d, pending %d, ack floor %d, delivered %d; want 0, 0, 250, 250", ci.NumAckPending, ci.NumPending, ci.AckFloor.Stream, ci.Delivered.Stream)
		}
	})
}

// Core NATS has no redelivery, so it cannot hold a message back: a marked
// message that arrives while the kill switch is off is refused (wrapping
// shadow.ErrKillSwitch, with its mark) and never handled, and is not
// delivered again after the switch is back on. Production messages are
// handled throughout.
func TestCoreKillSwitchRefuses(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		rt := bustest.SwitchRuntime(t)
		lg := bustest.NewLedger()
		s := newShadow(t, slnats.WithAll(), slnats.WithRuntime(rt), slnats.WithRefused(func(ctx context.Context, m *natsgo.Msg, err error) {
			if propagation.IsLoadTest(ctx) {
				t.Errorf("refusal ctx carries mark %v", propagation.FromContext(ctx))
			}
			lg.Refuse(string(m.Data), err)
		}))
		c := s.Conn(connect(t, url))
		subj := "nats7" + uniq() + ".orders.created"
		sub, err := c.QueueSubscribe(subj, "nats7svc", func(ctx context.Context, m *natsgo.Msg) {
			lg.Handle(string(m.Data), "svc", propagation.FromContext(ctx))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := c.NATS().Flush(); err != nil {
			t.Fatal(err)
		}
		lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
		send := func(ctx context.Context, ids ...string) {
			for _, id := range ids {
				if err := c.Publish(ctx, subj, []byte(id)); err != nil {
					t.Fatal(err)
				}
			}
		}
		rt.SetLoadTest(false, "test")
		send(lt, "off-1", "off-2")
		send(context.Background(), "prod-1")
		lg.WaitIDs(t, "production while off", []string{"prod-1"})
		lg.WaitRefused(t, "off-1", "off-2")
		rt.SetLoadTest(true, "")
		send(lt, "on-1")
		lg.WaitIDs(t, "marked after on", []string{"on-1"})
		time.Sleep(300 * time.Millisecond) // a late copy, if any
		lg.RefusedOnce(t, shadow.ErrKillSwitch, "off-1", "off-2")
		dp, _ := lg.Check(t, []string{"prod-1"}, "svc", "", "")
		dm, _ := lg.Check(t, []string{"on-1"}, "svc", "r1", "")
		if dp+dm != 0 {
			t.Errorf("%d duplicate handlings", dp+dm)
		}
	})
}

// A poison message is delivered MaxDeliver times, then refused once; it
// does not starve the others. A run mark on the production subject is
// refused once (by the trunk; the lane skips its copy), an upper-case env
// header routes to the lane, and a new lane consumer starts with new
// messages only.
func TestJetStreamPoisonAnomalyAndLanes(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		lg := bustest.NewLedger()
		refused := func(ctx context.Context, m *natsgo.Msg, err error) { lg.Refuse(string(m.Data), err) }
		lanes := envtag.StaticLanes{"work": {"proj-a"}}
		bucket := "mqbus" + uniq() + "_lanes"
		trunk := newShadow(t, slnats.WithAll(), slnats.WithRefused(refused), slnats.WithLanes(lanes), slnats.WithLaneBucket(bucket))
		lane := newShadow(t, slnats.WithAll(), slnats.WithRefused(refused), slnats.WithEnv("proj-a"), slnats.WithLanes(lanes), slnats.WithLaneBucket(bucket))
		js, stream, subj := jsSetup(t, url, trunk)
		t.Cleanup(func() { js.DeleteKeyValue(context.Background(), bucket) })
		raw := func(data string, h natsgo.Header) {
			t.Helper()
			if _, err := js.PublishMsg(context.Background(), &natsgo.Msg{Subject: subj, Data: []byte(data), Header: h}); err != nil {
				t.Fatal(err)
			}
		}
		raw("before-lane", natsgo.Header{"X-SHADOWLANE-ENV": {"proj-a"}})
		h := func(who string) slnats.JSHandler {
			return func(ctx context.Context, msg jetstream.Msg) error {
				lg.Attempt(who + "/" + string(msg.Data()))
				if string(msg.Data()) == "poison" {
					return errors.New("always fails")
				}
				lg.Handle(string(msg.Data()), who, propagation.FromContext(ctx))
				return nil
			}
		}
		tc, err := trunk.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3}, h("trunk"))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Stop()
		lc, err := lane.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 3}, h("lane"))
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Stop()
		raw("poison", nil)
		raw("forged", natsgo.Header{"x-shadowlane-run": {"evil"}})
		raw("conflict", natsgo.Header{"X-Shadowlane-Env": {"proj-a"}, "x-shadowlane-env": {"proj-b"}})
		raw("upper", natsgo.Header{"X-SHADOWLANE-ENV": {"proj-a"}})
		ok := make([]string, 20)
		for i := range ok {
			ok[i] = fmt.Sprintf("ok-%02d", i)
			raw(ok[i], nil)
		}
		lg.WaitIDs(t, "the others", ok) // not starved by the poison
		lg.WaitIDs(t, "the upper-case env header", []string{"upper"})
		lg.WaitRefused(t, "poison", "forged", "conflict")
		time.Sleep(500 * time.Millisecond) // late deliveries, if any
		dOK, _ := lg.Check(t, ok, "trunk", "", "")
		dUp, _ := lg.Check(t, []string{"upper"}, "lane", "", "proj-a") // the lane's, once; never the trunk's
		if dOK+dUp != 0 {
			t.Errorf("%d messages handled twice", dOK+dUp)
		}
		lg.RefusedOnce(t, slnats.ErrDeliveriesExhausted, "poison")
		if a := lg.Attempts("trunk/poison"); a != 3 {
			t.Errorf("poison: tried %d times, want 3", a)
		}
		lg.RefusedOnce(t, shadow.ErrBlocked, "forged")
		lg.RefusedOnce(t, shadow.ErrUnsupported, "conflict")
		for _, h := range lg.Handled("before-lane") {
			if h.By == "lane" {
				t.Error("a new lane consumer handled a message from before it existed")
			}
		}
	})
}
