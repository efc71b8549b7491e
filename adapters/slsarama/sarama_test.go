package slsarama_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

func newCluster(t testing.TB) []string {
	t.Helper()
	return fakeCluster(t, 1, "orders", "orders_shadow", "payments", "payments_shadow").ListenAddrs()
}

func config(interceptors ...sarama.ProducerInterceptor) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 0
	cfg.Producer.Interceptors = interceptors
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.Timeout = 2 * time.Second
	return cfg
}

func marked(run, env string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run, Env: env})
}

// readAll returns the values (sorted) and headers by value of a topic.
func readAll(t testing.TB, addrs []string, topic string) (vals []string, hdr map[string]map[string]string) {
	t.Helper()
	c, err := sarama.NewConsumer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	hdr = map[string]map[string]string{}
	for {
		select {
		case m := <-pc.Messages():
			vals = append(vals, string(m.Value))
			h := map[string]string{}
			for _, x := range m.Headers {
				h[string(x.Key)] = string(x.Value)
			}
			hdr[string(m.Value)] = h
		case <-time.After(700 * time.Millisecond):
			sort.Strings(vals)
			return vals, hdr
		}
	}
}

func TestProducerAndInterceptor(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slsarama.WithShadowTopics("orders"))
	sp := syncProducer(t, addrs, config(s))
	p := s.SyncProducer(sp)
	send := func(ctx context.Context, topic, v string, hs ...sarama.RecordHeader) error {
		_, _, err := p.SendMessage(ctx, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v), Headers: hs})
		return err
	}
	bg := context.Background()
	for _, c := range []struct {
		ctx context.Context
		v   string
		hs  []sarama.RecordHeader
	}{
		{bg, "prod", nil},
		{marked("", "proj-a"), "env-only", nil},
		{bg, "stale", []sarama.RecordHeader{{Key: []byte("x-shadowlane-run"), Value: []byte("r0")}}},
		{marked("r1", "proj-a"), "load", nil},
	} {
		if err := send(c.ctx, "orders", c.v, c.hs...); err != nil {
			t.Fatalf("%s: %v", c.v, err)
		}
	}
	var se *shadow.Error
	if err := send(marked("r1", ""), "payments", "leak?"); !errors.Is(err, shadow.ErrNoShadowTarget) || !errors.As(err, &se) || se.Store != "kafka" {
		t.Fatalf("marked send to payments: %v", err)
	}
	if err := send(bg, "orders_shadow", "guard"); !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Fatalf("unmarked send to shadow topic: %v", err)
	}
	// the interceptor alone, for sends that bypass the wrapper
	raw := func(topic, v string, hs ...sarama.RecordHeader) error {
		_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v), Headers: hs})
		return err
	}
	if err := raw("orders", "raw-load", sarama.RecordHeader{Key: []byte(bus.HeaderRun), Value: []byte("r2")}); err != nil {
		t.Fatal(err)
	}
	if err := raw("payments", "raw-leak?", sarama.RecordHeader{Key: []byte(bus.HeaderRun), Value: []byte("r2")}); err == nil {
		t.Fatal("interceptor let a marked message reach payments")
	}
	if err := raw("orders", "raw-bad", sarama.RecordHeader{Key: []byte(bus.HeaderRun), Value: []byte("r 2")}); err == nil {
		t.Fatal("interceptor let a malformed mark through")
	}
	if err := raw("orders_shadow", "raw-guard"); err == nil {
		t.Fatal("interceptor let an unmarked message reach a shadow topic")
	}

	vals, hdr := readAll(t, addrs, "orders")
	if want := []string{"env-only", "prod", "stale"}; !slices.Equal(vals, want) {
		t.Errorf("orders holds %v, want %v", vals, want)
	}
	if hdr["env-only"][bus.HeaderEnv] != "proj-a" || len(hdr["stale"]) != 0 || len(hdr["prod"]) != 0 {
		t.Errorf("production headers %v", hdr)
	}
	vals, hdr = readAll(t, addrs, "orders_shadow")
	if want := []string{"load", "raw-load"}; !slices.Equal(vals, want) {
		t.Errorf("orders_shadow holds %v, want %v", vals, want)
	}
	if h := hdr["load"]; h[bus.HeaderRun] != "r1" || h[bus.HeaderEnv] != "proj-a" {
		t.Errorf("shadow headers %v", h)
	}
	if vals, _ := readAll(t, addrs, "payments"); len(vals) != 0 {
		t.Errorf("payments holds %v", vals)
	}
}

func TestGroupHandler(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&lanes))
	sp := syncProducer(t, addrs, config())
	p := s.SyncProducer(sp)
	for _, m := range []struct{ run, env, v string }{
		{"", "", "prod"}, {"", "proj-a", "lane-a"}, {"", "proj-b", "b"}, {"r1", "", "load"},
	} {
		if _, _, err := p.SendMessage(marked(m.run, m.env), &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(m.v)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("bad"),
		Headers: []sarama.RecordHeader{{Key: []byte(bus.HeaderRun), Value: []byte("")}}}); err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		seen = map[string]propagation.Mark{}
	)
	h := func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		mu.Lock()
		seen[string(msg.Value)] = propagation.FromContext(ctx)
		mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wait := consumeGroups(t, ctx, addrs, s, h)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wait()
	mu.Lock()
	defer mu.Unlock()
	want := map[string]propagation.Mark{"prod": {}, "b": {Env: "proj-b"}, "load": {Run: "r1"}}
	if len(seen) != len(want) {
		t.Errorf("handled %v, want %v", seen, want)
	}
	for v, m := range want {
		if got, ok := seen[v]; !ok || got != m {
			t.Errorf("%s handled with %v (%v), want %v", v, got, ok, m)
		}
	}
}
