package slnats_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// stopAckWait is the ack wait of the consumers of the stop tests: far
// longer than stopPrompt, the bound within which what a stopped
// consumption held must reach another one, so a message that waits for
// its ack wait fails the test.
const (
	stopAckWait = 60 * time.Second
	stopPrompt  = 20 * time.Second
)

// natsstopStream creates a stream natsstop_<uniq> on subjects
// natsstop_<uniq>.orders.> (and its shadow twin when shadowed), removed
// after the test, and returns the stream and a subject on it.
func natsstopStream(t *testing.T, js jetstream.JetStream, s *slnats.Shadow, shadowed bool) (stream, subj string) {
	t.Helper()
	p := "natsstop_" + uniq()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p, Subjects: []string{p + ".orders.>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), p)
		if shadowed {
			js.DeleteStream(context.Background(), s.StreamName(p))
		}
	})
	if shadowed {
		if _, err := s.CreateShadowStream(ctx, js, p); err != nil {
			t.Fatal(err)
		}
	}
	return p, p + ".orders.created"
}

// tally counts the handlings of each message across consumptions.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *tally) add(data string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[data]++
}

func (c *tally) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}

// handle is a JetStream handler that counts the message.
func (c *tally) handle(ctx context.Context, msg jetstream.Msg) error {
	c.add(string(msg.Data()))
	return nil
}

// publishN publishes n messages "m00", "m01"... on subj through publish
// (a plain or a shadowlane JetStream publisher) under ctx.
func publishN(t *testing.T, ctx context.Context, publish func(context.Context, string, []byte, ...jetstream.PublishOpt) (*jetstream.PubAck, error), subj string, n int) {
	t.Helper()
	for i := range n {
		if _, err := publish(ctx, subj, fmt.Appendf(nil, "m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// consumerInfo reads a consumer's state with a plain client.
func consumerInfo(t *testing.T, js jetstream.JetStream, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, name)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// waitAll waits up to stopPrompt until want messages were handled, then
// checks that each was handled exactly once.
func (c *tally) waitAll(t *testing.T, want int, why string) {
	t.Helper()
	deadline := time.Now().Add(stopPrompt)
	for c.distinct() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let a duplicate show up
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.n) != want {
		t.Errorf("%s: %d of %d messages handled within %v (ack wait %v): the rest wait for their ack wait", why, len(c.n), want, stopPrompt, stopAckWait)
	}
	for d, k := range c.n {
		if k != 1 {
			t.Errorf("%s: %q handled %d times", why, d, k)
		}
	}
}

// pendingWith waits until the broker has delivered n messages to the
// consumer, none acknowledged yet, and returns its info.
func pendingWith(t *testing.T, js jetstream.JetStream, stream, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(stopPrompt)
	for {
		ci := consumerInfo(t, js, stream, name)
		if ci.NumAckPending == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: %d messages pending acknowledgement, want %d", name, ci.NumAckPending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The server counts a message delivered when it sends it; give the
	// client a moment to receive what was sent.
	time.Sleep(300 * time.Millisecond)
}

// brokerSettled checks with a plain client that the consumer has nothing
// pending: every message was acknowledged.
func brokerSettled(t *testing.T, js jetstream.JetStream, stream, name string, n int) {
	t.Helper()
	ci := consumerInfo(t, js, stream, name)
	if ci.NumAckPending != 0 || ci.NumPending != 0 || ci.AckFloor.Stream != uint64(n) {
		t.Errorf("consumer %s: ack pending %d, pending %d, ack floor %d; want 0, 0, %d", name, ci.NumAckPending, ci.NumPending, ci.AckFloor.Stream, n)
	}
}

// A consumption stopped while its handler is busy with one message hands
// back at once, by nak, the messages its fetch received behind it: another
// consumption of the same durable handles them well before their ack
// wait, while the busy handler still runs; that handler finishes and
// acknowledges its message. Every message is handled exactly once.
func TestJetStreamStopHandsBackFetched(t *testing.T) {
	const n = 20
	servers(t, func(t *testing.T, url string) {
		js := jetStream(t, connect(t, url))
		s := newShadow(t)
		stream, subj := natsstopStream(t, js, s, false)
		publishN(t, context.Background(), js.Publish, subj, n)
		cfg := jetstream.ConsumerConfig{Durable: "natsstop_work", AckPolicy: jetstream.AckExplicitPolicy, AckWait: stopAckWait}
		var c tally
		busy, release := make(chan string, 1), make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		first, err := s.ConsumeJetStream(context.Background(), js, stream, cfg, func(ctx context.Context, msg jetstream.Msg) error {
			select {
			case busy <- string(msg.Data()):
			default:
			}
			<-release // a slow handler that does not watch its context
			c.add(string(msg.Data()))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { free(); first.Stop() })
		<-busy
		pendingWith(t, js, stream, first.Consumers[0], n)
		stopped := make(chan struct{})
		go func() { first.Stop(); close(stopped) }()

		second, err := s.ConsumeJetStream(context.Background(), js, stream, cfg, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Stop()
		c.waitAll(t, n-1, "while the stopped consumption's handler runs")
		select {
		case <-stopped:
			t.Error("Stop returned while a handler was running")
		default:
		}
		free()
		<-stopped
		c.waitAll(t, n, "after the handler returned")
		brokerSettled(t, js, stream, first.Consumers[0], n)
	})
}

// A consumption stopped while the kill switch holds marked messages
// back (in progress) hands all of them back at once: another consumption
// of the same durable, once the switch is on, handles each exactly once
// well before their ack wait.
func TestJetStreamStopHandsBackHeld(t *testing.T) {
	const n = 20
	servers(t, func(t *testing.T, url string) {
		js := jetStream(t, connect(t, url))
		rt := bustest.SwitchRuntime(t)
		s := newShadow(t, slnats.WithAll(), slnats.WithRuntime(rt))
		stream, subj := natsstopStream(t, js, s, true)
		rt.SetLoadTest(false, "test")
		lt := propagation.With(context.Background(), propagation.Mark{Run: "natsstop"})
		publishN(t, lt, s.JetStream(js).Publish, subj, n)
		cfg := jetstream.ConsumerConfig{Durable: "natsstop_held", AckPolicy: jetstream.AckExplicitPolicy, AckWait: stopAckWait}
		var c tally
		h := c.handle
		first, err := s.ConsumeJetStream(context.Background(), js, stream, cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		pendingWith(t, js, s.StreamName(stream), first.Consumers[1], n)
		first.Stop()
		if d := c.distinct(); d != 0 {
			t.Fatalf("%d marked messages handled while the switch was off", d)
		}
		rt.SetLoadTest(true, "")
		second, err := s.ConsumeJetStream(context.Background(), js, stream, cfg, h)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Stop()
		c.waitAll(t, n, "after the holding consumption stopped")
		brokerSettled(t, js, s.StreamName(stream), first.Consumers[1], n)
	})
}

// A lane that holds marked messages back under the kill switch when its
// env leaves the lanes keeps them in progress while the switch is off
// (the trunk could not take them either), and hands them back once it is
// on: the trunk takes them over well before their ack wait, each exactly
// once, and the lane handles none.
func TestJetStreamLaneLeftWhileHolding(t *testing.T) {
	const n = 10
	servers(t, func(t *testing.T, url string) {
		js := jetStream(t, connect(t, url))
		rt := bustest.SwitchRuntime(t)
		var lanes envtag.SwapLanes
		lanes.Store(envtag.StaticLanes{"natsstop_lane": {"proj-a"}})
		bucket := "natsstop_" + uniq() + "_lanes"
		t.Cleanup(func() { js.DeleteKeyValue(context.Background(), bucket) })
		opts := []slnats.Option{slnats.WithAll(), slnats.WithRuntime(rt), slnats.WithLanes(&lanes), slnats.WithLaneBucket(bucket)}
		trunk := newShadow(t, opts...)
		lane := newShadow(t, append(opts, slnats.WithEnv("proj-a"))...)
		stream, subj := natsstopStream(t, js, trunk, true)
		cfg := jetstream.ConsumerConfig{Durable: "natsstop_lane", AckPolicy: jetstream.AckExplicitPolicy, AckWait: stopAckWait}
		var byTrunk, byLane tally
		tc, err := trunk.ConsumeJetStream(context.Background(), jetStream(t, connect(t, url)), stream, cfg, byTrunk.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Stop()
		lc, err := lane.ConsumeJetStream(context.Background(), jetStream(t, connect(t, url)), stream, cfg, byLane.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Stop()

		rt.SetLoadTest(false, "test")
		marked := propagation.With(context.Background(), propagation.Mark{Run: "natsstop", Env: "proj-a"})
		publishN(t, marked, trunk.JetStream(js).Publish, subj, n)
		pendingWith(t, js, trunk.StreamName(stream), lc.Consumers[1], n)
		lanes.Store(envtag.StaticLanes{})
		time.Sleep(500 * time.Millisecond) // the switch stays off a while after the lane left
		if d := byTrunk.distinct() + byLane.distinct(); d != 0 {
			t.Fatalf("%d marked messages handled while the switch was off", d)
		}
		rt.SetLoadTest(true, "")
		byTrunk.waitAll(t, n, "by the trunk after the lane left and the switch went on")
		if d := byLane.distinct(); d != 0 {
			t.Errorf("the lane handled %d messages after it left", d)
		}
	})
}

// The trunk hands over the backlog of a lane that left while the kill
// switch is off: the lane's marked messages wait (no delivery spent on
// them, none dropped after MaxDeliver) and are handled by the trunk,
// each exactly once, once the switch is on.
func TestJetStreamHandOverWhileSwitchOff(t *testing.T) {
	const n = 10
	servers(t, func(t *testing.T, url string) {
		js := jetStream(t, connect(t, url))
		rt := bustest.SwitchRuntime(t)
		var lanes envtag.SwapLanes
		lanes.Store(envtag.StaticLanes{"natsstop_ho": {"proj-a"}})
		bucket := "natsstop_" + uniq() + "_lanes"
		t.Cleanup(func() { js.DeleteKeyValue(context.Background(), bucket) })
		var refused tally
		opts := []slnats.Option{slnats.WithAll(), slnats.WithRuntime(rt), slnats.WithLanes(&lanes), slnats.WithLaneBucket(bucket)}
		trunk := newShadow(t, append(opts, slnats.WithRefused(func(ctx context.Context, m *natsgo.Msg, err error) {
			refused.add(string(m.Data))
			t.Logf("refused %s: %v", m.Data, err)
		}))...)
		lane := newShadow(t, append(opts, slnats.WithEnv("proj-a"))...)
		stream, subj := natsstopStream(t, js, trunk, true)
		cfg := jetstream.ConsumerConfig{Durable: "natsstop_ho", AckPolicy: jetstream.AckExplicitPolicy, AckWait: stopAckWait}
		var byTrunk tally
		tc, err := trunk.ConsumeJetStream(context.Background(), jetStream(t, connect(t, url)), stream, cfg, byTrunk.handle)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Stop()
		// The lane's consumer exists and its epoch is open, but no lane
		// instance runs: what is sent now is the lane's backlog.
		lc, err := lane.ConsumeJetStream(context.Background(), jetStream(t, connect(t, url)), stream, cfg, func(ctx context.Context, msg jetstream.Msg) error {
			t.Errorf("the lane handled %s after it stopped", msg.Data())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		lc.Stop()
		// The stopped lane's pull request must be gone on the server
		// before anything is sent, or the server may send a message to
		// it that nobody receives (it waits for its ack wait).
		bustest.Wait(t, stopPrompt, func() bool {
			c, err := js.Consumer(context.Background(), trunk.StreamName(stream), lc.Consumers[1])
			if err != nil {
				return false
			}
			ci, err := c.Info(context.Background())
			return err == nil && ci.NumWaiting == 0
		}, func() string { return "the stopped lane's pull request is still waiting" })
		marked := propagation.With(context.Background(), propagation.Mark{Run: "natsstop", Env: "proj-a"})
		publishN(t, marked, trunk.JetStream(js).Publish, subj, n)
		rt.SetLoadTest(false, "test")
		lanes.Store(envtag.StaticLanes{})
		time.Sleep(3 * time.Second) // several hand-over attempts while the switch is off
		if d := byTrunk.distinct(); d != 0 {
			t.Fatalf("%d marked messages handled while the switch was off", d)
		}
		rt.SetLoadTest(true, "")
		byTrunk.waitAll(t, n, "by the trunk's hand-over after the switch went on")
		// Broker side: the lane's consumer delivered each message once
		// (none redelivered, so no delivery was spent while the switch
		// was off) and all are acknowledged.
		ci := consumerInfo(t, js, trunk.StreamName(stream), lc.Consumers[1])
		if ci.Delivered.Consumer != n || ci.Delivered.Stream != n || ci.AckFloor.Stream != n || ci.NumAckPending != 0 {
			t.Errorf("lane consumer %s: %d deliveries of %d messages, ack floor %d, ack pending %d; want %d, %d, %d, 0", lc.Consumers[1], ci.Delivered.Consumer, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, n, n, n)
		}
		if d := refused.distinct(); d != 0 {
			t.Errorf("%d messages refused (dropped after MaxDeliver) during the hand-over", d)
		}
	})
}
