package slrocketmq_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/propagation"
)

func init() { rlog.SetLogLevel("error") }

// instance numbers client instances: the client shares one connection set
// per instance name in a process, so every producer and consumer of a
// test gets its own.
var instance atomic.Int64

func instanceName(t testing.TB) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "_").Replace(t.Name()), instance.Add(1))
}

func fixture(t testing.TB, topics ...string) *rmqfake.Server {
	t.Helper()
	srv, err := rmqfake.New(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetMaxHold(200 * time.Millisecond)
	for _, tp := range topics {
		srv.CreateTopic(tp, 2)
	}
	t.Cleanup(func() {
		if u := srv.Unknown(); len(u) != 0 {
			t.Errorf("the client sent request codes the fixture does not serve: %v", u)
		}
		srv.Close()
	})
	return srv
}

func testRuntime(t testing.TB) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "rocketmq-test", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func newShadow(t testing.TB, opts ...slrocketmq.Option) *slrocketmq.Shadow {
	t.Helper()
	s, err := slrocketmq.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newProducer starts a producer through s (nil: a raw producer without the
// interceptor, to put arbitrary messages on the broker).
func newProducer(t testing.TB, s *slrocketmq.Shadow, srv *rmqfake.Server) rocketmq.Producer {
	t.Helper()
	opts := []producer.Option{
		producer.WithNameServer([]string{srv.Addr()}),
		producer.WithGroupName("rocket15-pg"),
		producer.WithInstanceName(instanceName(t)),
		producer.WithRetry(0),
	}
	var p rocketmq.Producer
	var err error
	if s != nil {
		p, err = s.NewProducer(opts...)
	} else {
		p, err = rocketmq.NewProducer(opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

func consumerOpts(t testing.TB, srv *rmqfake.Server) []consumer.Option {
	return []consumer.Option{
		consumer.WithNameServer([]string{srv.Addr()}),
		consumer.WithInstance(instanceName(t)),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumeGoroutineNums(4),
	}
}

// seen records what handlers got: body -> marks, one per delivery.
type seen struct {
	mu sync.Mutex
	m  map[string][]propagation.Mark
}

func newSeen() *seen { return &seen{m: map[string][]propagation.Mark{}} }

func (s *seen) handler(extra func(ctx context.Context, m *primitive.MessageExt)) slrocketmq.Handler {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mk := propagation.FromContext(ctx)
		s.mu.Lock()
		for _, m := range msgs {
			s.m[string(m.Body)] = append(s.m[string(m.Body)], mk)
		}
		s.mu.Unlock()
		if extra != nil {
			for _, m := range msgs {
				extra(ctx, m)
			}
		}
		return consumer.ConsumeSuccess, nil
	}
}

func (s *seen) get(body string) []propagation.Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]propagation.Mark(nil), s.m[body]...)
}

func (s *seen) bodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for b := range s.m {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// waitFor waits until cond holds, at most 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func marked(run, env string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run, Env: env})
}

func msg(topic, body string, props ...string) *primitive.Message {
	m := primitive.NewMessage(topic, []byte(body))
	for i := 0; i+1 < len(props); i += 2 {
		m.WithProperty(props[i], props[i+1])
	}
	return m
}

// settle waits until group pulls from every queue of topics and of its
// retry topic: the client's start-up rebalance, which runs in the
// background, is then over. rocketmq-client-go races (a data race, under
// -race) when a consumer is shut down while that rebalance still runs.
func settle(t testing.TB, srv *rmqfake.Server, group string, topics ...string) {
	t.Helper()
	topics = append(topics[:len(topics):len(topics)], "%RETRY%"+group)
	waitFor(t, group+" rebalanced", func() bool { return srv.Pulled(group, topics...) })
	time.Sleep(20 * time.Millisecond) // the rest of the rebalance is local work
}

// startConsumer starts s's push consumer of group "billing" on "orders"
// with h (opts after consumerOpts), waits until its group and its shadow
// group pulled from every queue, and shuts it down when the test ends.
func startConsumer(t testing.TB, srv *rmqfake.Server, s *slrocketmq.Shadow, h slrocketmq.Handler, opts ...consumer.Option) *slrocketmq.PushConsumer {
	t.Helper()
	c, err := s.NewPushConsumer("billing", append(consumerOpts(t, srv), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("orders", consumer.MessageSelector{}, h); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	g, _ := s.ShadowGroup("billing")
	settle(t, srv, s.Rules().LaneName("billing"), "orders")
	settle(t, srv, g, "orders_shadow")
	t.Cleanup(func() { c.Shutdown() })
	return c
}

// gated runs h under a read lock of gate: a test that holds the write
// lock across a flip of the kill switch has no handler mid-flight across
// it.
func gated(gate *sync.RWMutex, h slrocketmq.Handler) slrocketmq.Handler {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		gate.RLock()
		defer gate.RUnlock()
		return h(ctx, msgs...)
	}
}

// countWhileOff counts into n each load-test message handled while rt's
// load tests are off (an extra for seen.handler).
func countWhileOff(rt *shadowlane.Runtime, n *atomic.Int64) func(context.Context, *primitive.MessageExt) {
	return func(ctx context.Context, m *primitive.MessageExt) {
		if on, _ := rt.LoadTestEnabled(); propagation.IsLoadTest(ctx) && !on {
			n.Add(1)
		}
	}
}
