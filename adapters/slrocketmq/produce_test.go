package slrocketmq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// stored returns the bodies stored on topic, with their properties.
func stored(srv *rmqfake.Server, topic string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, m := range srv.Messages(topic) {
		out[string(m.Body)] = m.Properties
	}
	return out
}

// Production, marked and env-tagged messages sent with the real client
// through the interceptor, by every send method: the broker stores marked
// messages only on the shadow topic, with the mark properties, and
// production messages only on the production topic, without a run
// property. Refused messages reach no topic.
func TestProduceRoutesByMark(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow", "payments", "payments_shadow")
	rt := testRuntime(t)
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"), slrocketmq.WithRuntime(rt))
	p := newProducer(t, s, srv)
	ctx := context.Background()
	run := marked("r1", "")
	runEnv := marked("r1", "proj-a")
	envOnly := marked("", "proj-a")

	send := func(ctx context.Context, m *primitive.Message) error {
		_, err := p.SendSync(ctx, m)
		return err
	}
	for _, c := range []struct {
		ctx  context.Context
		body string
	}{
		{ctx, "prod-1"},
		{run, "run-1"},
		{runEnv, "runenv-1"},
		{envOnly, "env-1"},
	} {
		if err := send(c.ctx, msg("orders", c.body)); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
	}
	// a stale mark (any letter case) copied onto a production message is removed
	if err := send(ctx, msg("orders", "stale-1", "x-shadowlane-run", "old", "X-SHADOWLANE-ENV", "proj-z")); err != nil {
		t.Fatal(err)
	}
	// SendAsync and SendOneWay go through the same interceptor
	var wg sync.WaitGroup
	wg.Add(1)
	if err := p.SendAsync(run, func(_ context.Context, _ *primitive.SendResult, err error) {
		if err != nil {
			t.Error(err)
		}
		wg.Done()
	}, msg("orders", "async-1")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := p.SendOneWay(run, msg("orders", "oneway-1")); err != nil {
		t.Fatal(err)
	}
	// a batch is rewritten message by message
	if _, err := p.SendSync(runEnv, msg("orders", "batch-1", "k", "v"), msg("orders", "batch-2", "X-Shadowlane-Run", "stale")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SendSync(ctx, msg("orders", "pbatch-1"), msg("orders", "pbatch-2", "x-shadowlane-RUN", "stale")); err != nil {
		t.Fatal(err)
	}

	// refusals
	refused := []struct {
		ctx  context.Context
		m    *primitive.Message
		want error
	}{
		{run, msg("payments", "no-twin"), shadow.ErrNoShadowTarget},
		{ctx, msg("orders_shadow", "prod-to-shadow"), shadow.ErrShadowFromProduction},
		{run, msg("orders", "smuggle-run", "note", "x\x02X-Shadowlane-Run\x01r9"), shadow.ErrUnsupported},
		{ctx, msg("orders", "smuggle-prod", "note", "x\x02x-shadowlane-run\x01r9"), shadow.ErrUnsupported},
		{marked("bad id", ""), msg("orders", "bad-run"), shadow.ErrUnsupported},
	}
	for _, c := range refused {
		err := send(c.ctx, c.m)
		var se *shadow.Error
		if !errors.Is(err, c.want) || !errors.As(err, &se) {
			t.Errorf("%s: got %v, want a *shadow.Error wrapping %v", c.m.Body, err, c.want)
		}
		if c.m.Topic != "" {
			t.Errorf("%s: a refused message keeps topic %q", c.m.Body, c.m.Topic)
		}
	}
	if err := p.SendOneWay(run, msg("payments", "no-twin-oneway")); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Errorf("oneway to a topic without twin: %v", err)
	}

	prod, shad := stored(srv, "orders"), stored(srv, "orders_shadow")
	wantProd := map[string]string{"prod-1": "", "env-1": "proj-a", "stale-1": "", "pbatch-1": "", "pbatch-2": ""}
	wantShadow := map[string]string{"run-1": "", "runenv-1": "proj-a", "async-1": "", "oneway-1": "", "batch-1": "proj-a", "batch-2": "proj-a"}
	if len(prod) != len(wantProd) || len(shad) != len(wantShadow) {
		t.Fatalf("production topic holds %d messages (want %d), shadow topic %d (want %d)", len(prod), len(wantProd), len(shad), len(wantShadow))
	}
	for body, env := range wantProd {
		props, ok := prod[body]
		if !ok {
			t.Errorf("%s not on the production topic", body)
			continue
		}
		for k := range props {
			if strings.EqualFold(k, bus.HeaderRun) || (strings.EqualFold(k, bus.HeaderEnv) && k != bus.HeaderEnv) {
				t.Errorf("%s on production carries %s", body, k)
			}
		}
		if props[bus.HeaderRun] != "" || props[bus.HeaderEnv] != env {
			t.Errorf("%s on production: properties %v, want env %q and no run", body, props, env)
		}
	}
	for body, env := range wantShadow {
		props, ok := shad[body]
		if !ok {
			t.Errorf("%s not on the shadow topic", body)
			continue
		}
		if props[bus.HeaderRun] != "r1" || props[bus.HeaderEnv] != env {
			t.Errorf("%s on shadow: properties %v, want run r1 env %q", body, props, env)
		}
	}
	if n := len(srv.Messages("payments")) + len(srv.Messages("payments_shadow")); n != 0 {
		t.Errorf("%d refused messages reached payments", n)
	}
	if b := rt.Decisions().Total(slrocketmq.Store, shadow.Block); b != 5 {
		t.Errorf("blocks counted: %d, want 5 (no twin twice, two smuggles, bad run)", b)
	}
	if g := rt.Decisions().Total(slrocketmq.Store, shadow.Guard); g != 1 {
		t.Errorf("guards counted: %d, want 1", g)
	}
}

// A namespace ("ns%topic") is kept; the rules see the bare topic.
func TestProduceKeepsNamespace(t *testing.T) {
	srv := fixture(t, "ns1%orders", "ns1%orders_shadow")
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	p := newProducer(t, s, srv)
	if _, err := p.SendSync(marked("r1", ""), msg("ns1%orders", "ns-run")); err != nil {
		t.Fatal(err)
	}
	if got := stored(srv, "ns1%orders_shadow"); got["ns-run"][bus.HeaderRun] != "r1" {
		t.Fatalf("shadow topic holds %v", got)
	}
	if n := len(srv.Messages("ns1%orders")); n != 0 {
		t.Fatalf("production topic holds %d messages", n)
	}
}

// With the manual queue selector the client sends to msg.Queue and names
// msg.Queue.Topic on the wire: the interceptor moves the queue with the
// message, and refuses a Queue that names another topic.
func TestProduceManualQueue(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow", "payments")
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	p, err := s.NewProducer(producer.WithNameServer([]string{srv.Addr()}), producer.WithGroupName("rocket15-pg"),
		producer.WithInstanceName(instanceName(t)), producer.WithRetry(0), producer.WithQueueSelector(producer.NewManualQueueSelector()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	q := &primitive.MessageQueue{Topic: "orders", BrokerName: "rmqfake-broker", QueueId: 1}
	for _, c := range []struct {
		ctx  context.Context
		body string
	}{{marked("r1", ""), "mq-run"}, {context.Background(), "mq-prod"}} {
		m := msg("orders", c.body)
		m.Queue = q
		if _, err := p.SendSync(c.ctx, m); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
	}
	if q.Topic != "orders" {
		t.Errorf("the caller's MessageQueue was changed to %q", q.Topic)
	}
	sh, pr := srv.Messages("orders_shadow"), srv.Messages("orders")
	if len(sh) != 1 || string(sh[0].Body) != "mq-run" || sh[0].QueueID != 1 || len(pr) != 1 || string(pr[0].Body) != "mq-prod" || pr[0].QueueID != 1 {
		t.Fatalf("shadow topic holds %v, production %v", sh, pr)
	}
	m := msg("orders", "mq-other")
	m.Queue = &primitive.MessageQueue{Topic: "payments", BrokerName: "rmqfake-broker"}
	if _, err := p.SendSync(marked("r1", ""), m); !errors.Is(err, shadow.ErrUnsupported) {
		t.Fatalf("a Queue of another topic: %v", err)
	}
	if n := len(srv.Messages("payments")); n != 0 {
		t.Fatalf("payments holds %d messages", n)
	}
}

// RequestAsync sends whatever the interceptor returned (the client ignores
// its error there): a refused message has lost its topic, so nothing is
// sent.
func TestProduceRequestAsyncRefused(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow", "payments")
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	p := newProducer(t, s, srv)
	err := p.RequestAsync(marked("r1", ""), time.Second, func(context.Context, *primitive.Message, error) {}, msg("payments", "req-async"))
	if err == nil {
		t.Error("RequestAsync of a refused message reported no error")
	}
	if n := len(srv.Messages("payments")); n != 0 {
		t.Fatalf("payments holds %d messages", n)
	}
}

// Context gives code the client calls without a context (a transaction
// listener) the mark of the message the interceptor prepared.
func TestContextOfPreparedMessage(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow")
	s := newShadow(t, slrocketmq.WithShadowTopics("orders"))
	p := newProducer(t, s, srv)
	for _, mk := range []propagation.Mark{{Run: "r1", Env: "proj-a"}, {}, {Env: "proj-b"}} {
		m := msg("orders", "tx")
		if _, err := p.SendSync(propagation.With(context.Background(), mk), m); err != nil {
			t.Fatal(err)
		}
		ctx, err := s.Context(context.Background(), m)
		if err != nil || propagation.FromContext(ctx) != mk {
			t.Errorf("sent under %v: context carries %v (%v)", mk, propagation.FromContext(ctx), err)
		}
	}
	m := msg("orders", "anomaly", bus.HeaderRun, "r1")
	if _, err := s.Context(context.Background(), m); !errors.Is(err, shadow.ErrBlocked) {
		t.Errorf("run property on a production topic: %v", err)
	}
}
