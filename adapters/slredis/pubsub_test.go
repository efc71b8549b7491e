package slredis_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// wait bounds every wait of these tests.
const wait = 5 * time.Second

// got is what a handler saw of one message.
type got struct {
	mark                 propagation.Mark
	channel, wire        string
	pattern, wirePattern string
	payload              string
}

func (g got) String() string {
	return fmt.Sprintf("{%v %s (wire %s) pattern %q (wire %q): %s}", g.mark, g.channel, g.wire, g.pattern, g.wirePattern, g.payload)
}

// collect returns a handler that sends what it sees on the returned
// channel.
func collect() (slredis.Handler, chan got) {
	ch := make(chan got, 100)
	return func(ctx context.Context, msg *slredis.Message) {
		ch <- got{propagation.FromContext(ctx), msg.Channel, msg.WireChannel, msg.Pattern, msg.WirePattern, msg.Payload}
	}, ch
}

// next returns the next message the handler saw whose payload starts
// with prefix (a shared server may carry other traffic), failing after
// wait.
func next(t *testing.T, ch chan got, prefix string) got {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case g := <-ch:
			if strings.HasPrefix(g.payload, prefix) {
				return g
			}
		case <-timeout:
			t.Fatalf("no message %q... within %v", prefix, wait)
		}
	}
}

// expect returns the messages with the given payloads, in whatever order
// they came (the production and the shadow side are separate
// connections), ignoring others; it fails after wait.
func expect(t *testing.T, ch chan got, payloads ...string) map[string]got {
	t.Helper()
	out := map[string]got{}
	timeout := time.After(wait)
	for len(out) < len(payloads) {
		select {
		case g := <-ch:
			if slices.Contains(payloads, g.payload) {
				out[g.payload] = g
			}
		case <-timeout:
			t.Fatalf("got %v within %v, want %q", out, wait, payloads)
		}
	}
	return out
}

// pubsubRedis returns a hook, a client of the real server with the hook,
// and a namespace for channel names.
func pubsubRedis(t *testing.T, opts ...slredis.Option) (*slredis.Hook, *redis.Client, string) {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	h := must(slredis.Instrument(rdb, opts...))
	t.Cleanup(func() { rdb.Close() })
	return h, rdb, uniq(t)
}

func guardCount(target string) int64 {
	for _, c := range shadow.Snapshot() {
		if c.Store == "redis" && c.Target == target && c.Decision == "guard" {
			return c.N
		}
	}
	return 0
}

// subscribed returns a function that fails t on a Subscribe error and
// closes the subscription at the end of the test.
func subscribed(t *testing.T) func(*slredis.Subscription, error) *slredis.Subscription {
	return func(sub *slredis.Subscription, err error) *slredis.Subscription {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
		return sub
	}
}

func TestSubscribeRealRedis(t *testing.T) {
	h, rdb, ns := pubsubRedis(t)
	ctx := context.Background()
	orders := ns + "orders"
	handler, ch := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{orders}, handler))

	if err := rdb.Publish(ctx, orders, "prod-1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(propagation.With(ctx, propagation.Mark{Run: "r1"}), orders, "test-1").Err(); err != nil {
		t.Fatal(err)
	}
	gs := expect(t, ch, "prod-1", "test-1")
	if g := gs["prod-1"]; g.mark != (propagation.Mark{}) || g.channel != orders || g.wire != orders {
		t.Errorf("production message: %v", g)
	}
	want := got{propagation.Mark{Run: bus.DefaultFallbackRun}, orders, "shadow:" + orders, "", "", "test-1"}
	if g := gs["test-1"]; g != want {
		t.Errorf("load-test message: %v, want %v", g, want)
	}

	// A subscription made under a mark follows only the shadow channel,
	// with that mark.
	handler2, ch2 := collect()
	m := propagation.Mark{Run: "r2", Env: "proj-a"}
	subscribed(t)(h.Subscribe(propagation.With(ctx, m), rdb, []string{orders}, handler2))
	rdb.Publish(ctx, orders, "prod-2")
	rdb.Publish(marked, orders, "test-2")
	if g := next(t, ch2, ""); g.payload != "test-2" || g.mark != m || g.channel != orders {
		t.Errorf("marked subscription got %v first", g)
	}
	if g := next(t, ch, "test-2"); g.mark.Run != bus.DefaultFallbackRun {
		t.Errorf("first subscription: %v", g)
	}

	// WithFallbackRun.
	handler3, ch3 := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{orders}, handler3, slredis.WithFallbackRun("from-redis")))
	rdb.Publish(marked, orders, "test-3")
	if g := next(t, ch3, "test-3"); g.mark != (propagation.Mark{Run: "from-redis"}) {
		t.Errorf("fallback run: %v", g)
	}
}

// TestPSubscribeGuardRealRedis: a production pattern that matches shadow
// channels never hands the handler a load-test message; the drop is
// counted. Removing the guard in dispatch makes it fail.
func TestPSubscribeGuardRealRedis(t *testing.T) {
	h, rdb, ns := pubsubRedis(t)
	ctx := context.Background()
	orders := ns + "orders"
	pattern := "*" + ns + "*" // like "*orders*": matches "shadow:<ns>orders" too

	prodHandler, prodCh := collect()
	subscribed(t)(h.PSubscribe(ctx, rdb, []string{pattern}, prodHandler, slredis.WithProductionOnly()))
	allHandler, allCh := collect()
	subscribed(t)(h.PSubscribe(ctx, rdb, []string{pattern}, allHandler))
	// What a raw go-redis subscriber sees: the leak this guards against.
	raw := rdb.PSubscribe(ctx, pattern)
	defer raw.Close()
	if _, err := raw.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	before := guardCount("PSUBSCRIBE")
	if err := rdb.Publish(marked, orders, "test-1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(ctx, orders, "prod-1").Err(); err != nil {
		t.Fatal(err)
	}
	if m, err := raw.ReceiveMessage(ctx); err != nil || m.Channel != "shadow:"+orders {
		t.Fatalf("raw PSUBSCRIBE got %v %v, want the shadow message", m, err)
	}

	// Production only: the shadow message (published first, same
	// connection) must not come before the production one.
	if g := next(t, prodCh, ""); g.payload != "prod-1" || g.mark != (propagation.Mark{}) || g.channel != orders || g.pattern != pattern {
		t.Fatalf("production-only PSUBSCRIBE got %v first", g)
	}
	// Production and shadow: the load-test message once, marked, with the
	// application's names; the production one unmarked.
	want := got{propagation.Mark{Run: bus.DefaultFallbackRun}, orders, "shadow:" + orders, pattern, "shadow:" + pattern, "test-1"}
	gs := expect(t, allCh, "test-1", "prod-1")
	if g := gs["test-1"]; g != want {
		t.Errorf("load-test message: %v, want %v", g, want)
	}
	if g := gs["prod-1"]; g.mark != (propagation.Mark{}) || g.channel != orders || g.wirePattern != pattern {
		t.Errorf("production message: %v", g)
	}
	// A production marker after everything: any leaked copy would have
	// been handled before it.
	rdb.Publish(ctx, orders, "end")
	for _, c := range []chan got{prodCh, allCh} {
		for g := next(t, c, ""); g.payload != "end"; g = next(t, c, "") {
			if g.wire != orders {
				t.Fatalf("leaked to a production handler: %v", g)
			}
		}
	}
	// One drop per production subscription whose pattern matched.
	if n := guardCount("PSUBSCRIBE") - before; n != 2 {
		t.Errorf("guard drops counted: %d, want 2", n)
	}
}

// TestPSubscribeStarRealRedis: PSUBSCRIBE "*" through the helper never
// hands a production handler a load-test message.
func TestPSubscribeStarRealRedis(t *testing.T) {
	h, rdb, ns := pubsubRedis(t)
	ctx := context.Background()
	handler, ch := collect()
	subscribed(t)(h.PSubscribe(ctx, rdb, []string{"*"}, handler, slredis.WithProductionOnly()))
	before := guardCount("PSUBSCRIBE")
	rdb.Publish(marked, ns+"orders", ns+"test")
	rdb.Publish(ctx, ns+"orders", ns+"prod")
	if g := next(t, ch, ns); g.payload != ns+"prod" {
		t.Fatalf("PSUBSCRIBE * got %v first", g)
	}
	if guardCount("PSUBSCRIBE") == before {
		t.Error("drop not counted")
	}
}

func TestSubscriptionEndsRealRedis(t *testing.T) {
	h, rdb, ns := pubsubRedis(t)
	orders := ns + "orders"
	numsub := func() int64 {
		v := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		defer v.Close()
		n := v.PubSubNumSub(context.Background(), orders, "shadow:"+orders).Val()
		return n[orders] + n["shadow:"+orders]
	}
	ended := func(sub *slredis.Subscription) {
		t.Helper()
		select {
		case <-sub.Done():
		case <-time.After(wait):
			t.Fatal("subscription still running")
		}
		deadline := time.Now().Add(wait)
		for numsub() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("server still has subscribers")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Context cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	handler, ch := collect()
	sub := subscribed(t)(h.Subscribe(ctx, rdb, []string{orders}, handler))
	if n := numsub(); n != 2 {
		t.Fatalf("NUMSUB = %d, want 2 (production and shadow)", n)
	}
	cancel()
	ended(sub)
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Errorf("Err after cancel = %v", sub.Err())
	}
	rdb.Publish(context.Background(), orders, "late")
	select {
	case g := <-ch:
		t.Fatalf("handled after cancel: %v", g)
	case <-time.After(50 * time.Millisecond):
	}

	// Close, also from the handler.
	stop := make(chan struct{})
	var once sync.Once
	sub = subscribed(t)(h.Subscribe(context.Background(), rdb, []string{orders}, func(ctx context.Context, msg *slredis.Message) {
		once.Do(func() { close(stop) })
	}))
	var self atomic.Pointer[slredis.Subscription]
	self.Store(subscribed(t)(h.Subscribe(context.Background(), rdb, []string{orders}, func(ctx context.Context, msg *slredis.Message) {
		self.Load().Close()
	})))
	rdb.Publish(marked, orders, "x")
	select {
	case <-stop:
	case <-time.After(wait):
		t.Fatal("message not handled")
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	ended(sub)
	select {
	case <-self.Load().Done():
	case <-time.After(wait):
		t.Fatal("Close from the handler did not end the subscription")
	}
	if sub.Err() != nil || self.Load().Err() != nil || sub.Close() != nil {
		t.Errorf("Err after Close = %v, %v", sub.Err(), self.Load().Err())
	}

	// Unsubscribe keeps the subscription, without the channel and its twin.
	handler, ch = collect()
	sub = subscribed(t)(h.Subscribe(context.Background(), rdb, []string{orders, ns + "other"}, handler))
	if err := sub.Unsubscribe(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for numsub() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Unsubscribe left subscribers")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rdb.Publish(marked, orders, "gone")
	rdb.Publish(marked, ns+"other", "other")
	if g := next(t, ch, ""); g.payload != "other" || g.channel != ns+"other" {
		t.Fatalf("after Unsubscribe: %v", g)
	}

	// Closing the client ends the subscription with an error.
	c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	hc := must(slredis.Instrument(c))
	sub, err := hc.Subscribe(context.Background(), c, []string{orders}, func(context.Context, *slredis.Message) {}, slredis.WithReceiveErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-sub.Done():
	case <-time.After(wait):
		sub.Close()
		t.Fatal("subscription outlived its client")
	}
	if !errors.Is(sub.Err(), redis.ErrClosed) {
		t.Errorf("Err after client Close = %v", sub.Err())
	}
}

func TestSSubscribeRealRedis(t *testing.T) {
	h, rdb, ns := pubsubRedis(t)
	ctx := context.Background()
	orders := ns + "orders"
	handler, ch := collect()
	subscribed(t)(h.SSubscribe(ctx, rdb, []string{orders}, handler))
	if err := rdb.SPublish(marked, orders, "test").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.SPublish(ctx, orders, "prod")
	gs := expect(t, ch, "test", "prod")
	if g := gs["test"]; g.mark.Run != bus.DefaultFallbackRun || g.channel != orders || g.wire != "shadow:"+orders {
		t.Errorf("sharded load-test message: %v", g)
	}
	if g := gs["prod"]; !g.mark.IsZero() || g.channel != orders {
		t.Errorf("sharded production message: %v", g)
	}
}

func TestSubscribeInstanceMode(t *testing.T) {
	ctx := context.Background()
	// A separate shadow server: the twin has the production name there.
	prodSrv, shadowSrv := miniredis.RunT(t), miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: prodSrv.Addr()})
	shadowRDB := redis.NewClient(&redis.Options{Addr: shadowSrv.Addr()})
	t.Cleanup(func() { rdb.Close(); shadowRDB.Close() })
	h := must(slredis.Instrument(rdb, slredis.WithShadowClient(shadowRDB)))
	handler, ch := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{"orders"}, handler))
	rdb.Publish(marked, "orders", "test")
	if g := next(t, ch, "test"); g.mark.Run != bus.DefaultFallbackRun || g.channel != "orders" || g.wire != "orders" {
		t.Errorf("instance-mode load-test message: %v", g)
	}
	rdb.Publish(ctx, "orders", "prod")
	if g := next(t, ch, "prod"); !g.mark.IsZero() {
		t.Errorf("instance-mode production message: %v", g)
	}

	// A shadow DB on the production server shares its channels: without a
	// naming the twins cannot be told apart.
	same := must(slredis.NewHook(slredis.WithShadowClient(slredis.ShadowDB(rdb, 1))))
	_, err := same.Subscribe(ctx, rdb, []string{"orders"}, handler)
	wantShadowErr(t, err, shadow.ErrNoShadowTarget)
	sub := subscribed(t)(same.Subscribe(ctx, rdb, []string{"orders"}, handler, slredis.WithProductionOnly()))
	sub.Close()
}

func TestSubscribeInstanceModeNamedRealRedis(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	shadowDB := slredis.ShadowDB(rdb, 9)
	t.Cleanup(func() { rdb.Close(); shadowDB.Close() })
	h := must(slredis.Instrument(rdb, slredis.WithShadowClient(shadowDB), slredis.WithKeyNaming(shadow.DefaultKey)))
	ns := uniq(t)
	ctx := context.Background()
	handler, ch := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{ns + "orders"}, handler))
	rdb.Publish(marked, ns+"orders", "test")
	rdb.Publish(ctx, ns+"orders", "prod")
	gs := expect(t, ch, "test", "prod")
	if g := gs["test"]; g.mark.Run != bus.DefaultFallbackRun || g.channel != ns+"orders" || g.wire != "shadow:"+ns+"orders" {
		t.Errorf("load-test message: %v", g)
	}
	if g := gs["prod"]; !g.mark.IsZero() {
		t.Errorf("production message: %v", g)
	}
}

func TestSubscribeRefusals(t *testing.T) {
	rdb, _ := mini(t)
	h := must(slredis.NewHook())
	ctx := context.Background()
	nop := func(context.Context, *slredis.Message) {}
	before := guardCount("SUBSCRIBE")
	_, err := h.Subscribe(ctx, rdb, []string{"orders", "shadow:orders"}, nop)
	wantShadowErr(t, err, shadow.ErrShadowFromProduction)
	if guardCount("SUBSCRIBE") != before+1 {
		t.Error("refusal not counted")
	}
	_, err = h.PSubscribe(ctx, rdb, []string{"shadow:*"}, nop, slredis.WithProductionOnly())
	wantShadowErr(t, err, shadow.ErrShadowFromProduction)
	_, err = h.Subscribe(marked, rdb, []string{"orders"}, nop, slredis.WithProductionOnly())
	wantShadowErr(t, err, shadow.ErrBlocked)

	_, err = slredis.NewHook(slredis.WithKeyNaming(shadow.Naming{}))
	wantShadowErr(t, err, shadow.ErrNoShadowTarget) // refused at construction now

	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": rdb.Options().Addr}})
	defer ring.Close()
	_, err = h.Subscribe(ctx, ring, []string{"orders"}, nop)
	wantShadowErr(t, err, shadow.ErrUnsupported)

	for name, f := range map[string]func() (*slredis.Subscription, error){
		"nil handler": func() (*slredis.Subscription, error) { return h.Subscribe(ctx, rdb, []string{"a"}, nil) },
		"nil client":  func() (*slredis.Subscription, error) { return h.Subscribe(ctx, nil, []string{"a"}, nop) },
		"no channel":  func() (*slredis.Subscription, error) { return h.PSubscribe(ctx, rdb, nil, nop) },
		"fallback run": func() (*slredis.Subscription, error) {
			return h.Subscribe(ctx, rdb, []string{"a"}, nop, slredis.WithFallbackRun("a b"))
		},
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}

	// A cancelled context: nothing starts.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Subscribe(cctx, rdb, []string{"orders"}, nop); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

// TestSubscribeCommandPath: (P|S)SUBSCRIBE sent as commands under a mark
// are refused (they would leave a pooled connection subscribed), and the
// connection stays usable.
func TestSubscribeCommandPath(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 1})
	defer rdb.Close()
	rdb.AddHook(must(slredis.NewHook()))
	for _, args := range [][]any{
		{"subscribe", "orders"}, {"psubscribe", "o*"}, {"ssubscribe", "orders"},
		{"unsubscribe"}, {"punsubscribe", "o*"}, {"sunsubscribe", "orders"},
	} {
		cmd := rdb.Do(marked, args...)
		se := wantShadowErr(t, cmd.Err(), shadow.ErrUnsupported)
		if se.Mark.Run != "run-1" || !strings.Contains(se.Rule, "Hook.Subscribe") {
			t.Errorf("%v: %v", args, se)
		}
		if len(args) > 1 && cmd.Args()[1] != args[1] {
			t.Errorf("%v: arguments not restored: %v", args, cmd.Args())
		}
	}
	_, err := rdb.Pipelined(marked, func(p redis.Pipeliner) error {
		p.Set(marked, "k", "v", 0)
		p.Do(marked, "subscribe", "orders")
		return nil
	})
	wantShadowErr(t, err, shadow.ErrUnsupported)
	if err := rdb.Set(marked, "k", "v", 0).Err(); err != nil {
		t.Fatalf("connection after refusals: %v", err)
	}
	if got := m.Keys(); len(got) != 1 || got[0] != "shadow:k" {
		t.Fatalf("keys %v", got)
	}
}

// TestSubscriptionReconnectsRealRedis: when the server drops the
// subscription's connections, the error is reported and the subscription
// goes on after go-redis reconnected.
func TestSubscriptionReconnectsRealRedis(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	ns := uniq(t)
	name := strings.ReplaceAll(strings.TrimSuffix(ns, ":"), ":", "-")
	rdb := redis.NewClient(&redis.Options{Addr: addr, ClientName: name})
	defer rdb.Close()
	h := must(slredis.Instrument(rdb))
	ctx := context.Background()
	errs := make(chan error, 100)
	handler, ch := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{ns + "orders"}, handler, slredis.WithReceiveErrors(func(err error) { errs <- err })))

	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, "cmd=subscribe") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if err := admin.Do(ctx, "client", "kill", "id", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 2 {
		t.Fatalf("killed %d subscriber connections, want 2:\n%s", killed, list)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "SUBSCRIBE") {
			t.Errorf("reported error does not say what failed: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("no error reported")
	}
	for _, tc := range []struct {
		ctx context.Context
		run string
	}{{ctx, ""}, {marked, bus.DefaultFallbackRun}} {
		deadline := time.Now().Add(wait)
		for done := false; !done; {
			if time.Now().After(deadline) {
				t.Fatalf("no message after reconnection (run %q)", tc.run)
			}
			rdb.Publish(tc.ctx, ns+"orders", "after-"+tc.run)
			select {
			case g := <-ch:
				if g.payload == "after-"+tc.run {
					if g.mark.Run != tc.run || g.channel != ns+"orders" {
						t.Errorf("after reconnection: %v", g)
					}
					done = true
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// TestSubscriptionHealthCheckRealRedis: an idle subscription pings its
// connections, and the pongs are not handed to the handler.
func TestSubscriptionHealthCheckRealRedis(t *testing.T) {
	defer slredis.SetHealthInterval(20 * time.Millisecond)()
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	ns := uniq(t)
	name := strings.ReplaceAll(strings.TrimSuffix(ns, ":"), ":", "-")
	rdb := redis.NewClient(&redis.Options{Addr: addr, ClientName: name})
	defer rdb.Close()
	h := must(slredis.Instrument(rdb))
	ctx := context.Background()
	errs := make(chan error, 100)
	handler, ch := collect()
	subscribed(t)(h.Subscribe(ctx, rdb, []string{ns + "orders"}, handler, slredis.WithReceiveErrors(func(err error) { errs <- err })))
	time.Sleep(200 * time.Millisecond)
	list := rdb.ClientList(ctx).Val()
	pinged := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, "cmd=ping") {
			pinged++
		}
	}
	if pinged != 2 {
		t.Errorf("%d subscriber connections pinged, want 2:\n%s", pinged, list)
	}
	rdb.Publish(marked, ns+"orders", "test")
	if g := next(t, ch, ""); g.payload != "test" {
		t.Errorf("got %v", g)
	}
	select {
	case err := <-errs:
		t.Errorf("error reported: %v", err)
	default:
	}
}

// Instance mode without key naming: pub/sub channels are server-wide, so a
// marked PUBLISH is refused unless Instrument saw the shadow client on
// another server (a shadow database of the production server would hand
// the message to production subscribers).
func TestPublishInstanceModeChannelsServerWide(t *testing.T) {
	srv, other := miniredis.RunT(t), miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	sameDB := slredis.ShadowDB(rdb, 1)
	otherRDB := redis.NewClient(&redis.Options{Addr: other.Addr()})
	t.Cleanup(func() { rdb.Close(); sameDB.Close(); otherRDB.Close() })

	slredis.Instrument(rdb, slredis.WithShadowClient(sameDB))
	wantShadowErr(t, rdb.Publish(marked, "orders", "x").Err(), shadow.ErrNoShadowTarget)
	wantShadowErr(t, rdb.SPublish(marked, "orders", "x").Err(), shadow.ErrNoShadowTarget)
	if err := rdb.Publish(context.Background(), "orders", "prod").Err(); err != nil {
		t.Errorf("production publish: %v", err)
	}

	// A hook added by hand cannot know where its shadow client is.
	byHand := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { byHand.Close() })
	byHand.AddHook(must(slredis.NewHook(slredis.WithShadowClient(otherRDB))))
	wantShadowErr(t, byHand.Publish(marked, "orders", "x").Err(), shadow.ErrNoShadowTarget)

	// With naming, the shadow channel has its own name: allowed.
	named := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	namedShadow := slredis.ShadowDB(named, 2)
	t.Cleanup(func() { named.Close(); namedShadow.Close() })
	slredis.Instrument(named, slredis.WithShadowClient(namedShadow), slredis.WithKeyNaming(shadow.DefaultKey))
	if err := named.Publish(marked, "orders", "x").Err(); err != nil {
		t.Errorf("instance mode with naming: %v", err)
	}
}

// (*redis.Ring).Publish goes straight to a shard client, past the ring's
// hooks; Instrument guards the shard clients too: a marked Ring.Publish is
// refused (it would go out under the production channel), an unmarked one
// to a shadow channel is guarded, and publishing through the ring's
// command path is shadowed as usual.
func TestRingPublishBypassGuarded(t *testing.T) {
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"s1": m1.Addr(), "s2": m2.Addr()}})
	t.Cleanup(func() { ring.Close() })
	slredis.Instrument(ring)
	ctx := context.Background()

	// Production subscribers on both shards see what reaches "orders".
	var subs []*redis.PubSub
	for _, m := range []*miniredis.Miniredis{m1, m2} {
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { c.Close() })
		ps := c.Subscribe(ctx, "orders")
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		subs = append(subs, ps)
	}

	wantShadowErr(t, ring.Publish(marked, "orders", "lt").Err(), shadow.ErrUnsupported)
	wantShadowErr(t, ring.Publish(ctx, "shadow:orders", "sneak").Err(), shadow.ErrShadowFromProduction)
	if err := ring.Do(marked, "publish", "orders", "lt-ok").Err(); err != nil {
		t.Fatalf("marked publish through the ring's command path: %v", err)
	}
	if err := ring.Publish(ctx, "orders", "prod").Err(); err != nil {
		t.Fatalf("production publish: %v", err)
	}
	// Exactly the production message reaches the production subscribers.
	got := 0
	for _, ps := range subs {
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		for {
			msg, err := ps.ReceiveMessage(rctx)
			if err != nil {
				break
			}
			if msg.Payload != "prod" {
				t.Errorf("production subscriber got %q on %s", msg.Payload, msg.Channel)
			}
			got++
		}
		cancel()
	}
	if got != 1 {
		t.Errorf("production subscribers got %d messages, want 1", got)
	}
}
