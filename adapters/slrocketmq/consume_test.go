package slrocketmq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// committed is the sum of the offsets group committed on the two queues of
// topic: the number of messages it is past.
func committed(srv *rmqfake.Server, group, topic string) int {
	var sum int64
	for q := range 2 {
		o, _ := srv.Offset(group, topic, q)
		sum += o
	}
	return int(sum)
}

// refusals records what the refused callback got.
type refusals struct {
	mu sync.Mutex
	m  map[string][]error
}

func (r *refusals) add(_ context.Context, m *primitive.MessageExt, err error) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string][]error{}
	}
	r.m[string(m.Body)] = append(r.m[string(m.Body)], err)
	r.mu.Unlock()
}

func (r *refusals) get(body string) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.m[body]...)
}

func (r *refusals) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// The real push consumer, production and shadow group, through the
// interceptor: production messages are handled unmarked, shadow ones under
// their mark (the fallback run without a run property); malformed,
// conflicting and anomalous marks put on the broker by a raw producer are
// refused once and never handled; the offsets of both groups move past
// everything.
func TestPushConsumerHandlesByMark(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	rt := testRuntime(t)
	var ref refusals
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"),
		slrocketmq.WithRuntime(rt), slrocketmq.WithRefused(ref.add))
	p := newProducer(t, s, srv)
	raw := newProducer(t, nil, srv)
	ctx := context.Background()

	for _, c := range []struct {
		ctx  context.Context
		body string
	}{
		{ctx, "prod-1"}, {ctx, "prod-2"}, {marked("r1", ""), "run-1"}, {marked("r2", "proj-a"), "runenv-1"}, {marked("", "proj-a"), "env-1"},
	} {
		if _, err := p.SendSync(c.ctx, msg("orders", c.body)); err != nil {
			t.Fatal(err)
		}
	}
	// anomalies, written around the interceptor
	bad := map[string]error{
		"anomaly-run-on-prod": shadow.ErrBlocked,
		"malformed-run":       shadow.ErrUnsupported,
		"conflict-case":       shadow.ErrUnsupported,
		"malformed-env":       shadow.ErrUnsupported,
	}
	for _, m := range []*primitive.Message{
		msg("orders", "anomaly-run-on-prod", "X-Shadowlane-Run", "r1"),
		msg("orders_shadow", "malformed-run", "X-Shadowlane-Run", "r 1"),
		msg("orders_shadow", "conflict-case", "X-Shadowlane-Run", "r1", "x-shadowlane-run", "r2"),
		msg("orders", "malformed-env", "x-shadowlane-env", "a/b"),
	} {
		if _, err := raw.SendSync(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.SendSync(ctx, msg("orders_shadow", "shadow-no-run")); err != nil {
		t.Fatal(err)
	}

	sn := newSeen()
	c, err := s.NewPushConsumer("billing", consumerOpts(t, srv)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("orders", consumer.MessageSelector{}, sn.handler(nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	settle(t, srv, "billing", "orders")
	settle(t, srv, "billing_shadow", "orders_shadow")
	want := map[string]propagation.Mark{
		"prod-1": {}, "prod-2": {}, "env-1": {Env: "proj-a"},
		"run-1": {Run: "r1"}, "runenv-1": {Run: "r2", Env: "proj-a"}, "shadow-no-run": {Run: bus.DefaultFallbackRun},
	}
	waitFor(t, "every message handled or refused", func() bool { return len(sn.bodies()) >= len(want) && ref.n() >= len(bad) })
	// both groups commit (with their pulls) past every message
	waitFor(t, "offsets past every message", func() bool {
		return committed(srv, "billing", "orders") == len(srv.Messages("orders")) &&
			committed(srv, "billing_shadow", "orders_shadow") == len(srv.Messages("orders_shadow"))
	})
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for body, mk := range want {
		if got := sn.get(body); len(got) != 1 || got[0] != mk {
			t.Errorf("%s handled with marks %v, want once with %v", body, got, mk)
		}
	}
	if got := sn.bodies(); len(got) != len(want) {
		t.Errorf("handled %v, want exactly %d bodies", got, len(want))
	}
	for body, werr := range bad {
		errs := ref.get(body)
		var se *shadow.Error
		if len(errs) != 1 || !errors.Is(errs[0], werr) || !errors.As(errs[0], &se) {
			t.Errorf("%s refused with %v, want once with a *shadow.Error wrapping %v", body, errs, werr)
		}
	}
	if b := rt.Decisions().Total(slrocketmq.Store, shadow.Block); b != int64(len(bad)) {
		t.Errorf("blocks counted: %d, want %d", b, len(bad))
	}
	t.Logf("requests %v", srv.Requests())
	if n := len(srv.Messages("%RETRY%billing")) + len(srv.Messages("%RETRY%billing_shadow")); n != 0 {
		t.Errorf("%d messages were sent back for retry", n)
	}
}

// Lanes: a lane instance (WithEnv) consumes in "<group>-<env>" and handles
// only its env's messages; the trunk skips the env while it has a live lane
// and handles everything else. Each message is handled once in all.
func TestLanesSplitByEnv(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	lanes := envtag.StaticLanes{"billing": {"proj-a"}}
	trunk := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"), slrocketmq.WithLanes(lanes))
	lane := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"), slrocketmq.WithLanes(lanes), slrocketmq.WithEnv("proj-a"))
	p := newProducer(t, trunk, srv)
	bodies := map[string]context.Context{
		"prod": context.Background(), "prod-a": marked("", "proj-a"), "prod-b": marked("", "proj-b"),
		"run": marked("r1", ""), "run-a": marked("r1", "proj-a"), "run-b": marked("r1", "proj-b"),
	}
	for body, ctx := range bodies {
		if _, err := p.SendSync(ctx, msg("orders", body)); err != nil {
			t.Fatal(err)
		}
	}
	st, sl := newSeen(), newSeen()
	for _, x := range []struct {
		s  *slrocketmq.Shadow
		sn *seen
	}{{trunk, st}, {lane, sl}} {
		startConsumer(t, srv, x.s, x.sn.handler(nil))
	}
	// every group committed past every message: each one was decided
	groups := map[string]string{"billing": "orders", "billing_shadow": "orders_shadow", "billing-proj-a": "orders", "billing-proj-a_shadow": "orders_shadow"}
	waitFor(t, "every group past every message", func() bool {
		for g, topic := range groups {
			if committed(srv, g, topic) != len(srv.Messages(topic)) {
				return false
			}
		}
		return true
	})
	wantLane := map[string]bool{"prod-a": true, "run-a": true}
	for body := range bodies {
		nt, nl := len(st.get(body)), len(sl.get(body))
		if wantLane[body] && (nl != 1 || nt != 0) || !wantLane[body] && (nt != 1 || nl != 0) {
			t.Errorf("%s handled %d times by the trunk and %d by the lane", body, nt, nl)
		}
	}
	if g := sl.get("run-a"); len(g) == 1 && g[0] != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
		t.Errorf("lane handled run-a under %v", g[0])
	}
}

// Configuration errors wrap ErrConfig.
func TestConfigErrors(t *testing.T) {
	for name, opts := range map[string][]slrocketmq.Option{
		"bad topic":         {slrocketmq.WithShadowTopics("a b")},
		"shadow topic":      {slrocketmq.WithShadowTopics("orders_shadow")},
		"namespaced topic":  {slrocketmq.WithShadowTopics("ns%orders")},
		"bad naming":        {slrocketmq.WithNaming(shadow.Naming{Suffix: ".shadow"})},
		"shadow group":      {slrocketmq.WithShadowGroups("g_shadow")},
		"bad env":           {slrocketmq.WithEnv("a b")},
		"negative hold":     {slrocketmq.WithHold(-1)},
		"empty group namin": {slrocketmq.WithGroupNaming(shadow.Naming{})},
	} {
		if _, err := slrocketmq.New(opts...); !errors.Is(err, slrocketmq.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	for _, g := range []string{"", "billing_shadow", "a%b"} {
		if _, err := s.NewPushConsumer(g); !errors.Is(err, slrocketmq.ErrConfig) {
			t.Errorf("group %q: %v, want ErrConfig", g, err)
		}
	}
}

// The kill switch: marked messages that arrive while load tests are off are
// held, then handed back to the broker (retry topic) and held again, never
// handled while off; production flows meanwhile. Once the switch is on each
// marked message is handled exactly once, under its mark, from the shadow
// topic it was sent to (the retry copy keeps it).
func TestKillSwitchHoldsMarkedMessages(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	rt := testRuntime(t)
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"),
		slrocketmq.WithRuntime(rt), slrocketmq.WithHold(150*time.Millisecond))
	p := newProducer(t, s, srv)
	var gate sync.RWMutex // held across a flip, so no handler is mid-flight across it
	var whileOff atomic.Int64
	sn := newSeen()
	startConsumer(t, srv, s, gated(&gate, sn.handler(countWhileOff(rt, &whileOff))))

	send := func(ctx context.Context, prefix string, n int) {
		t.Helper()
		for i := range n {
			if _, err := p.SendSync(ctx, msg("orders", fmt.Sprintf("%s%02d", prefix, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	handled := func(prefix string, n int) func() bool {
		return func() bool {
			for i := range n {
				if len(sn.get(fmt.Sprintf("%s%02d", prefix, i))) == 0 {
					return false
				}
			}
			return true
		}
	}
	lt := marked("r1", "")
	send(lt, "on-", 5)
	waitFor(t, "marked messages while on", handled("on-", 5))

	gate.Lock()
	rt.SetLoadTest(false, "test")
	gate.Unlock()
	send(lt, "off-", 10)
	send(context.Background(), "prod-", 10)
	waitFor(t, "production while off", handled("prod-", 10))
	waitFor(t, "held messages handed back to the broker", func() bool { return len(srv.Messages("%RETRY%billing_shadow")) >= 10 })
	for i := range 10 {
		if got := sn.get(fmt.Sprintf("off-%02d", i)); len(got) != 0 {
			t.Fatalf("off-%02d handled while the switch was off: %v", i, got)
		}
	}
	gate.Lock()
	rt.SetLoadTest(true, "")
	gate.Unlock()
	waitFor(t, "held messages after the switch is on", handled("off-", 10))
	time.Sleep(300 * time.Millisecond) // a second delivery would show by now
	for i := range 10 {
		if got := sn.get(fmt.Sprintf("off-%02d", i)); len(got) != 1 || got[0] != (propagation.Mark{Run: "r1"}) {
			t.Errorf("off-%02d handled with %v, want once under run r1", i, got)
		}
	}
	if n := whileOff.Load(); n != 0 {
		t.Errorf("%d marked messages handled while off", n)
	}
	if n := len(srv.Messages("%DLQ%billing_shadow")); n != 0 {
		t.Errorf("%d messages dead-lettered", n)
	}
	if n := len(srv.Messages("%RETRY%billing")); n != 0 {
		t.Errorf("%d production messages sent back", n)
	}
}

// An orderly push consumer runs the same interceptor: marks reach the
// handler, and while the kill switch is off a marked message is held in its
// queue (suspended, retried locally: never sent back) and handled once after.
//
// Under -race it is skipped: rocketmq-client-go (v2.1.3-0.20251226070945)
// races inside its orderly consumer, with no adapter code on either stack.
// processQueue.takeMessages (consumer/process_queue.go:313) polls
// pq.msgCache.Empty() without pq.mutex, while processQueue.putMessage
// (process_queue.go:116, under pq.mutex) puts into the same gods treemap:
//
//	Write: redblacktree.(*Tree).Put  <- treemap.(*Map).Put
//	       <- consumer.(*processQueue).putMessage       process_queue.go:116
//	       <- consumer.(*pushConsumer).pullMessage        push_consumer.go:889
//	       <- consumer.(*pushConsumer).Start.func1.1.1    push_consumer.go:174
//	Read:  redblacktree.(*Tree).Empty <- treemap.(*Map).Empty
//	       <- consumer.(*processQueue).takeMessages     process_queue.go:313
//	       <- consumer.(*pushConsumer).consumeMessageOrderly push_consumer.go:1280
//	       <- consumer.(*pushConsumer).pullMessage.func1  push_consumer.go:652
//
// The unsynchronized read is the size field of the tree (a word read; the
// loop re-checks under the lock), so the race is benign in practice but
// the detector fails the test. SLROCKETMQ_ORDERLY_RACE=1 runs it anyway,
// to see whether a newer client fixed it.
func TestOrderlyConsumer(t *testing.T) {
	if raceDetector && os.Getenv("SLROCKETMQ_ORDERLY_RACE") == "" {
		t.Skip("rocketmq-client-go's orderly consumer races: processQueue.takeMessages reads msgCache.Empty() without pq.mutex while putMessage writes it (see the comment); set SLROCKETMQ_ORDERLY_RACE=1 to run it under -race")
	}
	srv := fixture(t, "orders", "orders_shadow")
	rt := testRuntime(t)
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithShadowGroups("billing"),
		slrocketmq.WithRuntime(rt), slrocketmq.WithHold(100*time.Millisecond))
	p := newProducer(t, s, srv)
	var whileOff atomic.Int64
	var gate sync.RWMutex
	sn := newSeen()
	startConsumer(t, srv, s, gated(&gate, sn.handler(countWhileOff(rt, &whileOff))), consumer.WithConsumerOrder(true))

	gate.Lock()
	rt.SetLoadTest(false, "test")
	gate.Unlock()
	for i := range 6 {
		if _, err := p.SendSync(marked("r1", "proj-a"), msg("orders", fmt.Sprintf("ord-run-%d", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SendSync(context.Background(), msg("orders", fmt.Sprintf("ord-prod-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "production while off", func() bool {
		for i := range 6 {
			if len(sn.get(fmt.Sprintf("ord-prod-%d", i))) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // several holds run out meanwhile
	gate.Lock()
	rt.SetLoadTest(true, "")
	gate.Unlock()
	waitFor(t, "held marked messages", func() bool {
		for i := range 6 {
			if len(sn.get(fmt.Sprintf("ord-run-%d", i))) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond)
	for i := range 6 {
		if got := sn.get(fmt.Sprintf("ord-run-%d", i)); len(got) != 1 || got[0] != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
			t.Errorf("ord-run-%d handled with %v, want once under r1/proj-a", i, got)
		}
		if got := sn.get(fmt.Sprintf("ord-prod-%d", i)); len(got) != 1 || !got[0].IsZero() {
			t.Errorf("ord-prod-%d handled with %v, want once unmarked", i, got)
		}
	}
	if n := whileOff.Load(); n != 0 {
		t.Errorf("%d marked messages handled while off", n)
	}
	if n := len(srv.Messages("%RETRY%billing_shadow")); n != 0 {
		t.Errorf("an orderly consumer sent %d messages back", n)
	}
}

// A pull consumer (whose interceptors only observe) decides with
// Shadow.Decide: the real client's Poll delivers what the fixture stored,
// and Decide hands marks out, refuses malformed and anomalous marks once.
func TestPullConsumerDecide(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	rt := testRuntime(t)
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithRuntime(rt))
	p := newProducer(t, s, srv)
	raw := newProducer(t, nil, srv)
	for _, c := range []struct {
		ctx  context.Context
		body string
	}{{context.Background(), "prod"}, {marked("r1", "proj-a"), "run"}} {
		if _, err := p.SendSync(c.ctx, msg("orders", c.body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*primitive.Message{
		msg("orders", "anomaly", "x-shadowlane-run", "r1"),
		msg("orders_shadow", "malformed", "X-Shadowlane-Env", "no way"),
		msg("orders_shadow", "fallback"),
	} {
		if _, err := raw.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := rocketmq.NewPullConsumer(append(consumerOpts(t, srv), consumer.WithGroupName("audit"),
		consumer.WithInterceptor(s.ConsumerInterceptor()))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"orders", "orders_shadow"} {
		if err := pc.Subscribe(topic, consumer.MessageSelector{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	defer pc.Shutdown()
	got := map[string]bus.Decision{}
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < 5 && time.Now().Before(deadline) {
		cr, err := pc.Poll(context.Background(), time.Second)
		if err != nil {
			continue // nothing within the timeout
		}
		for _, m := range cr.GetMsgList() {
			got[string(m.Body)] = s.Decide("audit", m)
		}
		pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
	}
	settle(t, srv, "audit", "orders", "orders_shadow") // before the deferred Shutdown
	want := map[string]struct {
		a  bus.Action
		m  propagation.Mark
		is error
	}{
		"prod":      {bus.Handle, propagation.Mark{}, nil},
		"run":       {bus.Handle, propagation.Mark{Run: "r1", Env: "proj-a"}, nil},
		"fallback":  {bus.Handle, propagation.Mark{Run: bus.DefaultFallbackRun}, nil},
		"anomaly":   {bus.Refuse, propagation.Mark{Run: "r1"}, shadow.ErrBlocked},
		"malformed": {bus.Refuse, propagation.Mark{}, shadow.ErrUnsupported},
	}
	for body, w := range want {
		d, ok := got[body]
		if !ok {
			t.Errorf("%s never pulled", body)
			continue
		}
		if d.Action != w.a || d.Mark != w.m || (w.is != nil && !errors.Is(d.Err, w.is)) {
			t.Errorf("%s: decided %v %v %v, want %v %v %v", body, d.Action, d.Mark, d.Err, w.a, w.m, w.is)
		}
	}
	if b := rt.Decisions().Total(slrocketmq.Store, shadow.Block); b != 2 {
		t.Errorf("blocks counted: %d, want 2", b)
	}
}

// The consumer interceptor hands nothing on for a call it does not know,
// and passes the pull consumer's after-the-fact calls (nil reply) through.
func TestConsumerInterceptorUnknownCall(t *testing.T) {
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	icp := s.ConsumerInterceptor()
	called := 0
	next := func(context.Context, any, any) error { called++; return nil }
	var h consumer.ConsumeResultHolder
	if err := icp(context.Background(), []*primitive.Message{}, &h, next); !errors.Is(err, slrocketmq.ErrUnknownCall) || h.ConsumeResult != consumer.ConsumeRetryLater {
		t.Errorf("unknown request: %v, result %v", err, h.ConsumeResult)
	}
	if err := icp(context.Background(), []*primitive.MessageExt{}, "reply", next); !errors.Is(err, slrocketmq.ErrUnknownCall) {
		t.Errorf("unknown reply: %v", err)
	}
	if called != 0 {
		t.Fatalf("next called %d times for unknown calls", called)
	}
	if err := icp(context.Background(), []*primitive.MessageExt{}, nil, next); err != nil || called != 1 {
		t.Errorf("pull call: %v, next called %d times", err, called)
	}
}
