package slamqp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

func dial(t testing.TB) *amqp091.Connection {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_RABBITMQ_ADDR", "127.0.0.1:5672")
	testenv.Need(t, "RabbitMQ", addr)
	conn, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		testenv.Missing(t, "RabbitMQ", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func channel(t testing.TB, conn *amqp091.Connection) *amqp091.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func uniq() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

func marked(run, env string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run, Env: env})
}

// cleanup deletes queues and exchanges after the test.
func cleanup(t testing.TB, conn *amqp091.Connection, queues, exchanges []string) {
	t.Cleanup(func() {
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		defer ch.Close()
		for _, q := range queues {
			ch.QueueDelete(q, false, false, false)
		}
		for _, e := range exchanges {
			ch.ExchangeDelete(e, false, false)
		}
	})
}

// get fetches every message waiting in queue.
func get(t testing.TB, ch *amqp091.Channel, queue string) []amqp091.Delivery {
	t.Helper()
	var out []amqp091.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

func topology(p string) slamqp.Topology {
	return slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: p + ".orders", Kind: "topic"}, {Name: p + ".dlx", Kind: "fanout"}},
		Queues: []slamqp.Queue{
			{Name: p + ".billing", Args: amqp091.Table{"x-dead-letter-exchange": p + ".dlx"}},
			{Name: p + ".dead"},
		},
		Bindings: []slamqp.Binding{
			{Queue: p + ".billing", Exchange: p + ".orders", Key: "order.#"},
			{Queue: p + ".dead", Exchange: p + ".dlx"},
		},
	}
}

func TestShadowTopologyRefusesProductionDeadLetter(t *testing.T) {
	s := newShadow(t, slamqp.WithShadowExchanges("orders"), slamqp.WithShadowQueues("billing"))
	_, err := s.ShadowTopology(slamqp.Topology{Queues: []slamqp.Queue{{Name: "billing", Args: amqp091.Table{"x-dead-letter-exchange": "dlx"}}}})
	if !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatalf("err = %v, want ErrNoShadowTarget", err)
	}
	st, err := s.ShadowTopology(slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: "orders"}, {Name: "audit"}},
		Queues:    []slamqp.Queue{{Name: "billing"}, {Name: "audit-log"}},
		Bindings:  []slamqp.Binding{{Queue: "billing", Exchange: "orders", Key: "k"}, {Queue: "audit-log", Exchange: "audit"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Exchanges) != 1 || st.Exchanges[0].Name != "orders_shadow" || len(st.Queues) != 1 || st.Queues[0].Name != "billing_shadow" ||
		len(st.Bindings) != 1 || st.Bindings[0].Queue != "billing_shadow" || st.Bindings[0].Exchange != "orders_shadow" || st.Bindings[0].Key != "k" {
		t.Fatalf("shadow topology = %+v", st)
	}
}

func TestPublishConsume(t *testing.T) {
	conn := dial(t)
	p := uniq()
	var (
		mu      sync.Mutex
		refused []string
	)
	s := newShadow(t, slamqp.WithShadowExchanges(p+".orders", p+".dlx"), slamqp.WithShadowQueues(p+".billing", p+".dead"),
		slamqp.WithRefused(func(ctx context.Context, d *amqp091.Delivery, err error) {
			if !errors.Is(err, shadow.ErrUnsupported) || propagation.IsLoadTest(ctx) {
				t.Errorf("refusal err=%v mark=%v", err, propagation.FromContext(ctx))
			}
			mu.Lock()
			refused = append(refused, string(d.Body))
			mu.Unlock()
		}))
	cleanup(t, conn, []string{p + ".billing", p + ".dead", p + ".billing_shadow", p + ".dead_shadow"},
		[]string{p + ".orders", p + ".dlx", p + ".orders_shadow", p + ".dlx_shadow"})
	raw := channel(t, conn)
	if err := s.Declare(raw, topology(p)); err != nil {
		t.Fatal(err)
	}
	c := s.Channel(channel(t, conn))
	ctx := context.Background()
	pub := func(ctx context.Context, ex, key, body string, h amqp091.Table) error {
		return c.PublishWithContext(ctx, ex, key, false, false, amqp091.Publishing{Body: []byte(body), Headers: h})
	}
	for _, m := range []struct {
		ctx  context.Context
		body string
		h    amqp091.Table
	}{
		{ctx, "prod", nil},
		{marked("", "proj-a"), "env-only", nil},
		{ctx, "stale", amqp091.Table{"x-shadowlane-run": "r0", "keep": "1"}},
		{marked("r1", ""), "load", nil},
		{marked("r1", "proj-a"), "load-env", nil},
	} {
		if err := pub(m.ctx, p+".orders", "order.created", m.body, m.h); err != nil {
			t.Fatal(err)
		}
	}
	// through the default exchange, straight to a queue
	if err := pub(marked("r1", ""), "", p+".billing", "load-direct", nil); err != nil {
		t.Fatal(err)
	}
	if err := pub(marked("r1", ""), "amq.topic", "x", "leak?", nil); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatalf("marked publish to an unshadowed exchange: err = %v", err)
	}
	if err := pub(ctx, p+".orders_shadow", "order.created", "guard", nil); !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Fatalf("unmarked publish to a shadow exchange: err = %v", err)
	}
	if err := pub(ctx, "", p+".billing_shadow", "guard", nil); !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Fatalf("unmarked publish to a shadow queue: err = %v", err)
	}
	// publishers that bypassed shadowlane
	for _, m := range []struct {
		ex, body string
		h        amqp091.Table
	}{
		{p + ".orders", "bad-run", amqp091.Table{bus.HeaderRun: "r 1"}},
		{p + ".orders", "bad-type", amqp091.Table{bus.HeaderRun: int32(7)}},
		{p + ".orders_shadow", "bare", nil},
	} {
		if err := raw.PublishWithContext(ctx, m.ex, "order.created", false, false, amqp091.Publishing{Body: []byte(m.body), Headers: m.h}); err != nil {
			t.Fatal(err)
		}
	}

	type got struct {
		queue string
		mark  propagation.Mark
	}
	var (
		gmu   sync.Mutex
		seen  = map[string]got{}
		tries = map[string]int{}
		all   = make(chan struct{})
	)
	h := func(ctx context.Context, d *amqp091.Delivery) error {
		gmu.Lock()
		defer gmu.Unlock()
		b := string(d.Body)
		tries[b]++
		if b == "load" && tries[b] == 1 {
			return errors.New("transient") // nacked with requeue: delivered again
		}
		if _, dup := seen[b]; dup {
			t.Errorf("%s handled twice", b)
		}
		seen[b] = got{d.RoutingKey, propagation.FromContext(ctx)}
		if len(seen) == 7 {
			close(all)
		}
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Consume(cctx, p+".billing", h) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		gmu.Lock()
		t.Fatalf("handled %v", seen)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	gmu.Lock()
	for b, want := range map[string]propagation.Mark{
		"prod": {}, "env-only": {Env: "proj-a"}, "stale": {}, "load": {Run: "r1"},
		"load-env": {Run: "r1", Env: "proj-a"}, "load-direct": {Run: "r1"}, "bare": {Run: bus.DefaultFallbackRun},
	} {
		if g, ok := seen[b]; !ok || g.mark != want {
			t.Errorf("%s handled as %+v (%v), want mark %v", b, g, ok, want)
		}
	}
	if tries["load"] != 2 {
		t.Errorf("load tried %d times, want 2", tries["load"])
	}
	gmu.Unlock()
	mu.Lock()
	if len(refused) != 2 {
		t.Errorf("refused %v, want bad-run and bad-type", refused)
	}
	mu.Unlock()
	// refused deliveries were dead-lettered into the production DLX's queue
	// (they came from the production queue), never handled
	time.Sleep(200 * time.Millisecond)
	dead := get(t, raw, p+".dead")
	if len(dead) != 2 {
		t.Errorf("dead-letter queue holds %d messages, want 2", len(dead))
	}
	if n := len(get(t, raw, p+".dead_shadow")); n != 0 {
		t.Errorf("shadow dead-letter queue holds %d", n)
	}
}

func TestLanes(t *testing.T) {
	conn := dial(t)
	p := uniq()
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{p + ".q": {"proj-a"}})
	opts := []slamqp.Option{slamqp.WithShadowExchanges(p + ".ex"), slamqp.WithShadowQueues(p + ".q")}
	trunk := newShadow(t, append(opts, slamqp.WithLanes(&lanes))...)
	lane := newShadow(t, append(opts, slamqp.WithEnv("proj-a"))...)
	if q := lane.Queues(p + ".q"); len(q) != 2 || q[0] != p+".q-proj-a" || q[1] != p+".q-proj-a_shadow" {
		t.Fatalf("lane queues %v", q)
	}
	cleanup(t, conn, []string{p + ".q", p + ".q_shadow", p + ".q-proj-a", p + ".q-proj-a_shadow"}, []string{p + ".ex", p + ".ex_shadow"})
	topo := slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: p + ".ex", Kind: "fanout"}},
		Queues:    []slamqp.Queue{{Name: p + ".q"}},
		Bindings:  []slamqp.Binding{{Queue: p + ".q", Exchange: p + ".ex"}},
	}
	raw := channel(t, conn)
	if err := trunk.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if err := lane.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	pub := trunk.Channel(raw)
	for _, m := range []struct{ run, env, body string }{
		{"", "", "untagged"}, {"", "proj-a", "a"}, {"", "proj-b", "b"}, {"r1", "proj-a", "load-a"}, {"r1", "", "load"},
	} {
		if err := pub.PublishWithContext(marked(m.run, m.env), p+".ex", "", false, false, amqp091.Publishing{Body: []byte(m.body)}); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(s *slamqp.Shadow, n int) map[string]propagation.Mark {
		var mu sync.Mutex
		out := map[string]propagation.Mark{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.Channel(channel(t, conn)).Consume(ctx, p+".q", func(ctx context.Context, d *amqp091.Delivery) error {
				mu.Lock()
				out[string(d.Body)] = propagation.FromContext(ctx)
				if len(out) == n {
					time.AfterFunc(200*time.Millisecond, cancel)
				}
				mu.Unlock()
				return nil
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			cancel()
			<-done
			t.Fatalf("waited for %d messages, got %v", n, out)
		}
		mu.Lock()
		defer mu.Unlock()
		return out
	}
	tg := collect(trunk, 3)
	lg := collect(lane, 2)
	if len(tg) != 3 || tg["untagged"] != (propagation.Mark{}) || tg["b"].Env != "proj-b" || tg["load"].Run != "r1" {
		t.Errorf("trunk handled %v", tg)
	}
	if len(lg) != 2 || lg["a"].Env != "proj-a" || lg["load-a"] != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
		t.Errorf("lane handled %v", lg)
	}
	// the lane goes away: the trunk takes proj-a again
	lanes.Store(envtag.StaticLanes{})
	if err := pub.PublishWithContext(marked("", "proj-a"), p+".ex", "", false, false, amqp091.Publishing{Body: []byte("a-after")}); err != nil {
		t.Fatal(err)
	}
	if tg := collect(trunk, 1); tg["a-after"].Env != "proj-a" {
		t.Errorf("trunk after the lane left handled %v", tg)
	}
}
