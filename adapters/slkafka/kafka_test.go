package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

var allTopics = []string{"orders", "orders_shadow", "payments", "payments_shadow"}

func newCluster(t testing.TB) []string {
	t.Helper()
	return fakeCluster(t, 1, allTopics...).ListenAddrs()
}

func newClient(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newShadow(t testing.TB, opts ...slkafka.Option) *slkafka.Shadow {
	t.Helper()
	s, err := slkafka.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readAll reads every record of topic from the start, without a group,
// up to the end offsets an admin client lists (a quiet period is no proof
// of the end on a loaded machine).
func readAll(t testing.TB, addrs []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(newClient(t, addrs)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cl := newClient(t, addrs, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(100*time.Millisecond))
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), want, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func values(rs []*kgo.Record) []string {
	var v []string
	for _, r := range rs {
		v = append(v, string(r.Value))
	}
	sort.Strings(v)
	return v
}

func marked(run, env string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run, Env: env})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, opts := range map[string][]slkafka.Option{
		"empty topic naming":  {slkafka.WithNaming(shadow.Naming{})},
		"empty group naming":  {slkafka.WithGroupNaming(shadow.Naming{})},
		"shadow topic listed": {slkafka.WithShadowTopics("orders_shadow")},
		"bad env":             {slkafka.WithEnv("proj a")},
		"bad fallback run":    {slkafka.WithFallbackRun("not an id")},
	} {
		if _, err := slkafka.New(opts...); !errors.Is(err, slkafka.ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestProducerRoutesAndRefuses(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	blocks := shadow.Total(slkafka.Store, shadow.Block)
	guards := shadow.Total(slkafka.Store, shadow.Guard)

	// production, env-only and stale-header records keep their topic
	for _, c := range []struct {
		ctx context.Context
		r   *kgo.Record
	}{
		{bg, &kgo.Record{Topic: "orders", Value: []byte("prod")}},
		{marked("", "proj-a"), &kgo.Record{Topic: "orders", Value: []byte("env-only")}},
		{bg, &kgo.Record{Topic: "orders", Value: []byte("stale"), Headers: []kgo.RecordHeader{
			{Key: "x-shadowlane-run", Value: []byte("r0")}, {Key: "keep", Value: []byte("1")}}}},
		{marked("r1", "proj-a"), &kgo.Record{Topic: "orders", Value: []byte("load")}},
	} {
		if err := p.ProduceSync(c.ctx, c.r).FirstErr(); err != nil {
			t.Fatalf("%s: %v", c.r.Value, err)
		}
	}

	// marked record for a topic without a shadow twin: typed refusal, not sent
	res := p.ProduceSync(marked("r1", ""), &kgo.Record{Topic: "payments", Value: []byte("leak?")})
	var se *shadow.Error
	if err := res.FirstErr(); !errors.Is(err, shadow.ErrNoShadowTarget) || !errors.As(err, &se) || se.Store != "kafka" || se.Mark.Run != "r1" {
		t.Fatalf("payments: err = %v, want *shadow.Error wrapping ErrNoShadowTarget", err)
	}
	// unmarked record for a shadow topic: guard
	var promised error
	p.Produce(bg, &kgo.Record{Topic: "orders_shadow", Value: []byte("guard")}, func(_ *kgo.Record, err error) { promised = err })
	if !errors.Is(promised, shadow.ErrShadowFromProduction) {
		t.Fatalf("unmarked to shadow topic: err = %v", promised)
	}
	if d := shadow.Total(slkafka.Store, shadow.Block) - blocks; d != 1 {
		t.Errorf("blocks counted = %d, want 1", d)
	}
	if d := shadow.Total(slkafka.Store, shadow.Guard) - guards; d != 1 {
		t.Errorf("guards counted = %d, want 1", d)
	}

	prod := readAll(t, addrs, "orders")
	if got, want := values(prod), []string{"env-only", "prod", "stale"}; !slices.Equal(got, want) {
		t.Fatalf("orders holds %v, want %v", got, want)
	}
	for _, r := range prod {
		if _, ok := header(r, bus.HeaderRun); ok {
			t.Errorf("production record %q carries a run header", r.Value)
		}
		env, ok := header(r, bus.HeaderEnv)
		if string(r.Value) == "env-only" && env != "proj-a" {
			t.Errorf("env-only record: env header = %q, %v", env, ok)
		}
		if string(r.Value) == "stale" {
			if len(r.Headers) != 1 || r.Headers[0].Key != "keep" {
				t.Errorf("stale record headers = %v, want only keep", r.Headers)
			}
		}
	}
	sh := readAll(t, addrs, "orders_shadow")
	if len(sh) != 1 || string(sh[0].Value) != "load" {
		t.Fatalf("orders_shadow holds %v, want [load]", values(sh))
	}
	if run, _ := header(sh[0], bus.HeaderRun); run != "r1" {
		t.Errorf("shadow record run header = %q", run)
	}
	if env, _ := header(sh[0], bus.HeaderEnv); env != "proj-a" {
		t.Errorf("shadow record env header = %q", env)
	}
	if n := len(readAll(t, addrs, "payments")) + len(readAll(t, addrs, "payments_shadow")); n != 0 {
		t.Errorf("payments topics hold %d records, want 0", n)
	}
}

func TestHookEnforcesOnPlainClient(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"))
	cl := newClient(t, addrs, kgo.WithHooks(s))

	if err := cl.ProduceSync(marked("r1", ""), &kgo.Record{Topic: "orders", Value: []byte("load")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// a record whose own Context is marked, produced with a bare ctx
	r := &kgo.Record{Topic: "orders", Value: []byte("load-rctx"), Context: marked("r2", "")}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(marked("r1", ""), &kgo.Record{Topic: "payments", Value: []byte("leak?")}).FirstErr(); err == nil {
		t.Fatal("marked record for payments was accepted by the hooked client")
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders_shadow", Value: []byte("guard")}).FirstErr(); err == nil {
		t.Fatal("unmarked record for a shadow topic was accepted by the hooked client")
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("prod")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// DefaultProduceTopicAlways overwrites topics before the hook runs: the
	// hook still redirects, and the wrapper refuses such a client.
	always := newClient(t, addrs, kgo.WithHooks(s), kgo.DefaultProduceTopic("orders"), kgo.DefaultProduceTopicAlways())
	if err := always.ProduceSync(marked("r3", ""), &kgo.Record{Topic: "whatever", Value: []byte("load-always")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Producer(always); !errors.Is(err, slkafka.ErrConfig) {
		t.Errorf("Producer(DefaultProduceTopicAlways client) err = %v, want ErrConfig", err)
	}

	if got, want := values(readAll(t, addrs, "orders_shadow")), []string{"load", "load-always", "load-rctx"}; !slices.Equal(got, want) {
		t.Errorf("orders_shadow holds %v, want %v", got, want)
	}
	if got, want := values(readAll(t, addrs, "orders")), []string{"prod"}; !slices.Equal(got, want) {
		t.Errorf("orders holds %v, want %v", got, want)
	}
	if n := len(readAll(t, addrs, "payments")); n != 0 {
		t.Errorf("payments holds %d records", n)
	}
}

// seen collects what handlers were called with.
type seen struct {
	mu   sync.Mutex
	recs []got
	cond chan struct{}
}

type got struct {
	group, topic, value string
	mark                propagation.Mark
}

func newSeen() *seen { return &seen{cond: make(chan struct{}, 1)} }

func (s *seen) add(g got) {
	s.mu.Lock()
	s.recs = append(s.recs, g)
	s.mu.Unlock()
	select {
	case s.cond <- struct{}{}:
	default:
	}
}

func (s *seen) wait(t testing.TB, n int) []got {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		l := len(s.recs)
		s.mu.Unlock()
		if l >= n {
			// give a straggler the chance to show up, then snapshot
			time.Sleep(300 * time.Millisecond)
			s.mu.Lock()
			defer s.mu.Unlock()
			return slices.Clone(s.recs)
		}
		select {
		case <-s.cond:
		case <-deadline:
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("waited for %d records, have %d: %+v", n, len(s.recs), s.recs)
		}
	}
}

func handlerInto(sn *seen, group string) slkafka.Handler {
	return func(ctx context.Context, r *kgo.Record) error {
		sn.add(got{group, r.Topic, string(r.Value), propagation.FromContext(ctx)})
		return nil
	}
}

func runConsumer(t testing.TB, c *slkafka.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitStarted waits until c fixed where its groups start.
func waitStarted(t testing.TB, c *slkafka.Consumer, stop func() error) {
	t.Helper()
	select {
	case <-c.Started():
	case <-time.After(30 * time.Second):
		t.Fatalf("consumer did not start: %v", stop())
	}
}

func TestConsumerRebuildsMark(t *testing.T) {
	addrs := newCluster(t)
	var refusedMu sync.Mutex
	var refused []string
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"),
		slkafka.WithRefused(func(ctx context.Context, r *kgo.Record, err error) error {
			if !errors.Is(err, shadow.ErrUnsupported) || propagation.IsLoadTest(ctx) {
				t.Errorf("refusal: err = %v, ctx mark = %v", err, propagation.FromContext(ctx))
			}
			refusedMu.Lock()
			refused = append(refused, string(r.Value))
			refusedMu.Unlock()
			return nil
		}))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "p%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(marked("r1", ""), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "l%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	raw := newClient(t, addrs)
	for _, r := range []*kgo.Record{
		// a load-test record that bypassed shadowlane: shadow topic, no headers
		{Topic: "orders_shadow", Value: []byte("bare")},
		// malformed mark headers: never handled
		{Topic: "orders", Value: []byte("bad-run"), Headers: []kgo.RecordHeader{{Key: bus.HeaderRun, Value: []byte("r 1")}}},
		{Topic: "orders", Value: []byte("two-runs"), Headers: []kgo.RecordHeader{{Key: bus.HeaderRun, Value: []byte("a")}, {Key: "x-shadowlane-run", Value: []byte("b")}}},
		{Topic: "orders_shadow", Value: []byte("bad-env"), Headers: []kgo.RecordHeader{{Key: bus.HeaderEnv, Value: []byte("")}}},
	} {
		if err := raw.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	sn := newSeen()
	c, err := s.Consumer("svc", []string{"orders"}, handlerInto(sn, "svc"), kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if pl := c.Plans(); len(pl) != 2 || pl[0].Group != "svc" || pl[1].Group != "svc_shadow" || !slices.Equal(pl[1].Topics, []string{"orders_shadow"}) {
		t.Fatalf("plans = %+v", pl)
	}
	stop := runConsumer(t, c)
	recs := sn.wait(t, 7)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("handled %d records, want 7: %+v", len(recs), recs)
	}
	for _, g := range recs {
		switch {
		case g.value[0] == 'p':
			if g.topic != "orders" || !g.mark.IsZero() {
				t.Errorf("production record %+v", g)
			}
		case g.value[0] == 'l':
			if g.topic != "orders_shadow" || g.mark != (propagation.Mark{Run: "r1"}) {
				t.Errorf("load-test record %+v", g)
			}
		case g.value == "bare":
			if g.mark.Run != bus.DefaultFallbackRun {
				t.Errorf("bare shadow record handled with mark %v", g.mark)
			}
		default:
			t.Errorf("unexpected record handled: %+v", g)
		}
	}
	refusedMu.Lock()
	defer refusedMu.Unlock()
	sort.Strings(refused)
	if want := []string{"bad-env", "bad-run", "two-runs"}; !slices.Equal(refused, want) {
		t.Errorf("refused %v, want %v", refused, want)
	}
}

func TestConsumerWithoutShadowGroupNeverReadsShadowTopics(t *testing.T) {
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("other"))
	c, err := s.Consumer("svc", []string{"orders", "payments"}, func(context.Context, *kgo.Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if pl := c.Plans(); len(pl) != 1 || pl[0].Shadow || !slices.Equal(pl[0].Topics, []string{"orders", "payments"}) {
		t.Fatalf("plans = %+v", pl)
	}
	if _, err := s.Consumer("svc", []string{"orders_shadow"}, func(context.Context, *kgo.Record) error { return nil }); !errors.Is(err, slkafka.ErrConfig) {
		t.Fatalf("production consumer of a shadow topic: err = %v", err)
	}
}

func TestConsumerRedeliversAfterFailureAndRestart(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "p%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(marked("r1", ""), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "l%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		ok      = map[string]int{}
		failed  bool
		poison  = errors.New("poison")
		marks   = map[string]propagation.Mark{}
		allDone = make(chan struct{})
	)
	h := func(ctx context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if string(r.Value) == "p4" && !failed {
			failed = true
			return poison
		}
		ok[string(r.Value)]++
		marks[string(r.Value)] = propagation.FromContext(ctx)
		if len(ok) == 20 {
			close(allDone)
		}
		return nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100 * time.Millisecond)}
	c1, err := s.Consumer("svc", []string{"orders"}, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c1.Run(ctx); !errors.Is(err, poison) {
		t.Fatalf("first run returned %v, want the handler's error", err)
	}
	mu.Lock()
	if _, handled := ok["p4"]; handled {
		t.Fatal("p4 counted as handled")
	}
	mu.Unlock()

	c2, err := s.Consumer("svc", []string{"orders"}, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c2)
	select {
	case <-allDone:
	case <-time.After(20 * time.Second):
		mu.Lock()
		t.Fatalf("after restart only %d of 20 records handled: %v", len(ok), ok)
	}
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for v, n := range ok {
		if n != 1 {
			t.Errorf("%s handled %d times, want once", v, n)
		}
		if want := (v[0] == 'l'); marks[v].LoadTest() != want {
			t.Errorf("%s handled with mark %v", v, marks[v])
		}
	}
}

func TestLanes(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithEnv("proj-a"))
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	produce := func(run, env, v string) {
		t.Helper()
		if err := p.ProduceSync(marked(run, env), &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100 * time.Millisecond)}
	ts, ls := newSeen(), newSeen()
	tc, err := trunk.Consumer("svc", []string{"orders"}, handlerInto(ts, "trunk"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, handlerInto(ls, "lane"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if pl := lc.Plans(); pl[0].Group != "svc-proj-a" || pl[1].Group != "svc-proj-a_shadow" {
		t.Fatalf("lane plans = %+v", pl)
	}
	stopTrunk := runConsumer(t, tc)
	stopLane := runConsumer(t, lc)
	waitStarted(t, lc, stopLane) // a lane starts at the end of its topics: produce after it started
	produce("", "", "untagged")
	produce("", "proj-a", "a")
	produce("", "proj-b", "b")
	produce("r1", "proj-a", "load-a")
	produce("r1", "", "load-trunk")

	byValue := func(gs []got) map[string]propagation.Mark {
		m := map[string]propagation.Mark{}
		for _, g := range gs {
			m[g.value] = g.mark
		}
		return m
	}
	tg := byValue(ts.wait(t, 3))
	lg := byValue(ls.wait(t, 2))
	if len(tg) != 3 || !tg["untagged"].IsZero() || tg["b"] != (propagation.Mark{Env: "proj-b"}) || tg["load-trunk"] != (propagation.Mark{Run: "r1"}) {
		t.Errorf("trunk handled %v", tg)
	}
	if len(lg) != 2 || lg["a"] != (propagation.Mark{Env: "proj-a"}) || lg["load-a"] != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
		t.Errorf("lane handled %v", lg)
	}

	// the lane goes away: the trunk takes proj-a records again
	if err := stopLane(); err != nil {
		t.Fatal(err)
	}
	lanes.Store(envtag.StaticLanes{})
	produce("", "proj-a", "a-after")
	tg = byValue(ts.wait(t, 4))
	if m, ok := tg["a-after"]; !ok || m != (propagation.Mark{Env: "proj-a"}) {
		t.Errorf("trunk did not take proj-a back: %v", tg)
	}
	if err := stopTrunk(); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareUnmarkedDoesNotAllocate(t *testing.T) {
	s := newShadow(t, slkafka.WithShadowTopics("orders"))
	r := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("x")}}}
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := s.Prepare(ctx, r); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("unmarked Prepare allocates %v times per record", n)
	}
}
