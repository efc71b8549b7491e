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
)

type counts struct {
	mu      sync.Mutex
	n       map[string]int
	whileOf map[string]bool
	refused map[string][]error
}

func newCounts() *counts {
	return &counts{n: map[string]int{}, whileOf: map[string]bool{}, refused: map[string][]error{}}
}

func (c *counts) distinct(prefix string) (d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for v := range c.n {
		if strings.HasPrefix(v, prefix) {
			d++
		}
	}
	return d
}

func (c *counts) waitFor(t testing.TB, prefix string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.distinct(prefix) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: handled %d, want %d", prefix, c.distinct(prefix), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
		cs := newCounts()
		var gate sync.RWMutex
		cons, err := s.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy}, func(ctx context.Context, msg jetstream.Msg) error {
			gate.RLock()
			defer gate.RUnlock()
			on, _ := rt.LoadTestEnabled()
			cs.mu.Lock()
			cs.n[string(msg.Data())]++
			if propagation.IsLoadTest(ctx) && !on {
				cs.whileOf[string(msg.Data())] = true
			}
			cs.mu.Unlock()
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
		cs.waitFor(t, "a-", 20)
		gate.Lock()
		rt.SetLoadTest(false, "test")
		gate.Unlock()
		publish(lt, "off-", 30)
		publish(context.Background(), "poff-", 10)
		cs.waitFor(t, "poff-", 10)
		time.Sleep(500 * time.Millisecond)
		if d := cs.distinct("off-"); d != 0 {
			t.Fatalf("%d marked messages were handled while off", d)
		}
		wg.Wait()
		gate.Lock()
		rt.SetLoadTest(true, "")
		gate.Unlock()
		cs.waitFor(t, "off-", 30)
		cs.waitFor(t, "stream", 200)
		time.Sleep(300 * time.Millisecond)
		cs.mu.Lock()
		defer cs.mu.Unlock()
		// A record the adapter decided while the switch was on may start its
		// handler just after the flip (the switch stops new decisions; work
		// already decided completes, like an HTTP request admitted before it):
		// at most one per consumer goroutine, and only among the records that
		// were streaming across the flip. A switch that did not hold would let
		// most of the records streamed while it was off through.
		var straddled []string
		for v, n := range cs.n {
			if n != 1 {
				t.Errorf("%s handled %d times", v, n)
			}
			if cs.whileOf[v] {
				if strings.HasPrefix(v, "stream") {
					straddled = append(straddled, v)
					continue
				}
				t.Errorf("%s handled while off", v)
			}
		}
		if len(straddled) > 3 {
			t.Errorf("%d records handled while load tests were off (at most 3 decided just before the flip may be): %v", len(straddled), straddled)
		} else if len(straddled) > 0 {
			t.Logf("%d records decided just before the flip were handled just after it: %v", len(straddled), straddled)
		}
		if len(cs.n) != 260 {
			t.Errorf("handled %d distinct, want 260", len(cs.n))
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
		cs := newCounts()
		refused := func(ctx context.Context, m *natsgo.Msg, err error) {
			cs.mu.Lock()
			cs.refused[string(m.Data)] = append(cs.refused[string(m.Data)], err)
			cs.mu.Unlock()
		}
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
		var tries sync.Map
		h := func(who string) slnats.JSHandler {
			return func(ctx context.Context, msg jetstream.Msg) error {
				v, _ := tries.LoadOrStore(who+string(msg.Data()), new(int))
				cs.mu.Lock()
				*v.(*int)++
				cs.mu.Unlock()
				if string(msg.Data()) == "poison" {
					return errors.New("always fails")
				}
				cs.mu.Lock()
				cs.n[who+":"+string(msg.Data())]++
				cs.mu.Unlock()
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
		for i := range 20 {
			raw(fmt.Sprintf("ok-%02d", i), nil)
		}
		cs.waitFor(t, "trunk:ok-", 20)
		cs.waitFor(t, "lane:upper", 1)
		deadline := time.Now().Add(20 * time.Second)
		for {
			cs.mu.Lock()
			n := len(cs.refused["poison"])
			cs.mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if v, _ := tries.Load("trunkpoison"); v == nil || *v.(*int) != 3 || len(cs.refused["poison"]) != 1 || !errors.Is(cs.refused["poison"][0], slnats.ErrDeliveriesExhausted) {
			t.Errorf("poison: tries %v, refused %v", v, cs.refused["poison"])
		}
		for _, bad := range []string{"forged", "conflict"} {
			if len(cs.refused[bad]) != 1 || cs.n["trunk:"+bad]+cs.n["lane:"+bad] != 0 {
				t.Errorf("%s: refused %v, handled trunk %d lane %d", bad, cs.refused[bad], cs.n["trunk:"+bad], cs.n["lane:"+bad])
			}
		}
		if !errors.Is(cs.refused["forged"][0], shadow.ErrBlocked) || !errors.Is(cs.refused["conflict"][0], shadow.ErrUnsupported) {
			t.Errorf("refusal errors %v", cs.refused)
		}
		if cs.n["trunk:upper"] != 0 || cs.n["lane:upper"] != 1 {
			t.Errorf("upper-case env header: trunk %d lane %d", cs.n["trunk:upper"], cs.n["lane:upper"])
		}
		if cs.n["lane:before-lane"] != 0 {
			t.Error("a new lane consumer handled a message from before it existed")
		}
	})
}
