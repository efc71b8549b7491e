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

	"github.com/shadowlane/shadowlane"
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
	nc := connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p := uniq()
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
// handled while load tests are off; each is handled exactly once after.
func TestJetStreamKillSwitch(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		rt, err := shadowlane.New(shadowlane.Config{Service: "bus-test", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		s, err := slnats.New(slnats.WithAll(), slnats.WithRuntime(rt))
		if err != nil {
			t.Fatal(err)
		}
		js, stream, subj := jsSetup(t, url, s)
		sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
		cons, err := s.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy}, func(ctx context.Context, msg jetstream.Msg) error {
			sw.Handle(ctx, string(msg.Data()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop()
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
		publish(lt, "off-", 30)
		publish(context.Background(), "poff-", 10)
		sw.WaitFor(t, "poff-", 10)
		time.Sleep(500 * time.Millisecond)
		if d, _ := sw.Count("off-"); d != 0 {
			t.Fatalf("%d marked messages were handled while off", d)
		}
		wg.Wait()
		sw.Flip(func() { rt.SetLoadTest(true, "") })
		sw.WaitFor(t, "off-", 30)
		sw.WaitFor(t, "stream", 200)
		time.Sleep(300 * time.Millisecond)
		sw.Check(t, "stream", 3, 260)
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
		trunk, err := slnats.New(slnats.WithAll(), slnats.WithRefused(refused), slnats.WithLanes(lanes), slnats.WithLaneBucket(bucket))
		if err != nil {
			t.Fatal(err)
		}
		lane, err := slnats.New(slnats.WithAll(), slnats.WithRefused(refused), slnats.WithEnv("proj-a"), slnats.WithLanes(lanes), slnats.WithLaneBucket(bucket))
		if err != nil {
			t.Fatal(err)
		}
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
