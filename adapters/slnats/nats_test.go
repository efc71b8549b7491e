package slnats_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// embedded starts an in-process nats-server with JetStream on a random
// loopback port.
func embedded(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// servers runs f against an embedded server (always) and the loopback
// NATS (through testenv: skipped when absent, failing when required).
func servers(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("embedded", func(t *testing.T) { f(t, embedded(t)) })
	t.Run("loopback", func(t *testing.T) {
		addr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
		testenv.Need(t, "NATS", addr)
		f(t, "nats://"+addr)
	})
}

func connect(t testing.TB, url string) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.Timeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func uniq() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

func marked(run, env string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run, Env: env})
}

type got struct {
	subject, data string
	mark          propagation.Mark
}

type sink struct {
	mu sync.Mutex
	gs []got
}

func (s *sink) handler(ctx context.Context, m *natsgo.Msg) {
	s.mu.Lock()
	s.gs = append(s.gs, got{m.Subject, string(m.Data), propagation.FromContext(ctx)})
	s.mu.Unlock()
}

// wait returns what arrived once n messages did (plus a short grace period
// so that extra deliveries show up), or fails.
func (s *sink) wait(t testing.TB, n int) map[string]got {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		l := len(s.gs)
		s.mu.Unlock()
		if l >= n {
			break
		}
		if time.Now().After(deadline) {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Fatalf("got %d of %d messages: %+v", l, n, s.gs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]got{}
	for _, g := range s.gs {
		if _, dup := out[g.data]; dup {
			t.Errorf("%q delivered twice", g.data)
		}
		out[g.data] = g
	}
	if len(s.gs) != n {
		t.Errorf("got %d messages, want %d: %+v", len(s.gs), n, s.gs)
	}
	return out
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, opts := range map[string][]slnats.Option{
		"empty subject naming": {slnats.WithNaming(shadow.Naming{})},
		"dot in stream naming": {slnats.WithStreamNaming(shadow.Naming{Suffix: ".shadow"})},
		"bad pattern":          {slnats.WithShadowSubjects("orders.>.x")},
		"shadow pattern":       {slnats.WithShadowSubjects("shadow.orders")},
		"bad env":              {slnats.WithEnv("a.b")},
	} {
		if _, err := slnats.New(opts...); !errors.Is(err, slnats.ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestShadowSubjectCoverage(t *testing.T) {
	s := newShadow(t, slnats.WithShadowSubjects("orders.>", "pay.*.done"))
	for subj, want := range map[string]bool{
		"orders.created": true, "orders.a.b": true, "orders.*": true, "orders.>": true,
		"orders": false, ">": false, "pay.x.done": true, "pay.*.done": true, "pay.>": false,
		"pay.x.done.y": false, "shadow.orders.x": false, "payments.x": false,
	} {
		if _, ok := s.ShadowSubject(subj); ok != want {
			t.Errorf("ShadowSubject(%q) covered = %v, want %v", subj, ok, want)
		}
	}
}

func TestPublishSubscribe(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		p := uniq()
		var refused sink
		s := newShadow(t, slnats.WithShadowSubjects(p+".orders.>"), slnats.WithRefused(func(ctx context.Context, m *natsgo.Msg, err error) {
			if !errors.Is(err, shadow.ErrUnsupported) || propagation.IsLoadTest(ctx) {
				t.Errorf("refusal err = %v, mark %v", err, propagation.FromContext(ctx))
			}
			refused.handler(ctx, m)
		}))
		nc := connect(t, url)
		c := s.Conn(nc)

		// raw observers of where messages land
		var rawProd, rawShadow sink
		for subj, sk := range map[string]*sink{p + ".orders.created": &rawProd, "shadow." + p + ".orders.created": &rawShadow} {
			sub, err := nc.Subscribe(subj, func(m *natsgo.Msg) { sk.handler(context.Background(), m) })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sub.Unsubscribe() })
		}
		var h sink
		sub, err := c.QueueSubscribe(p+".orders.*", "svc", h.handler)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if sub.Shadow == nil || sub.Shadow.Subject != "shadow."+p+".orders.*" || sub.Shadow.Queue != "svc_shadow" {
			t.Fatalf("shadow subscription = %+v", sub.Shadow)
		}
		// a production wildcard subscription that catches shadow subjects
		var wild sink
		wsub, err := c.Subscribe("*."+p+".orders.created", wild.handler)
		if err != nil {
			t.Fatal(err)
		}
		defer wsub.Unsubscribe()

		subj := p + ".orders.created"
		bg := context.Background()
		if err := c.Publish(bg, subj, []byte("prod")); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(marked("", "proj-a"), subj, []byte("env-only")); err != nil {
			t.Fatal(err)
		}
		stale := &natsgo.Msg{Subject: subj, Data: []byte("stale"), Header: natsgo.Header{bus.HeaderRun: {"r0"}, "Keep": {"1"}}}
		if err := c.PublishMsg(bg, stale); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(marked("r1", "proj-a"), subj, []byte("load")); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(marked("r1", ""), p+".payments.x", []byte("leak?")); !errors.Is(err, shadow.ErrNoShadowTarget) {
			t.Fatalf("marked publish without shadow subject: err = %v", err)
		}
		if err := c.Publish(bg, "shadow."+subj, []byte("guard")); !errors.Is(err, shadow.ErrShadowFromProduction) {
			t.Fatalf("unmarked publish to a shadow subject: err = %v", err)
		}
		// messages from publishers that bypassed shadowlane
		for _, m := range []*natsgo.Msg{
			{Subject: subj, Data: []byte("bad-run"), Header: natsgo.Header{bus.HeaderRun: {"r 1"}}},
			{Subject: subj, Data: []byte("conflict"), Header: natsgo.Header{bus.HeaderRun: {"a"}, "x-shadowlane-run": {"b"}}},
			{Subject: "shadow." + subj, Data: []byte("lower"), Header: natsgo.Header{"x-shadowlane-run": {"r2"}}},
			{Subject: "shadow." + subj, Data: []byte("bare")},
		} {
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}

		gs := h.wait(t, 6)
		for data, want := range map[string]got{
			"prod":     {subj, "prod", propagation.Mark{}},
			"env-only": {subj, "env-only", propagation.Mark{Env: "proj-a"}},
			"stale":    {subj, "stale", propagation.Mark{}},
			"load":     {"shadow." + subj, "load", propagation.Mark{Run: "r1", Env: "proj-a"}},
			"lower":    {"shadow." + subj, "lower", propagation.Mark{Run: "r2"}},
			"bare":     {"shadow." + subj, "bare", propagation.Mark{Run: bus.DefaultFallbackRun}},
		} {
			if gs[data] != want {
				t.Errorf("%s: handled as %+v, want %+v", data, gs[data], want)
			}
		}
		if r := refused.wait(t, 2); len(r) != 2 || r["bad-run"].data == "" || r["conflict"].data == "" {
			t.Errorf("refused %v", r)
		}
		wild.mu.Lock()
		if len(wild.gs) != 0 {
			t.Errorf("production wildcard subscription handled shadow messages: %+v", wild.gs)
		}
		wild.mu.Unlock()
		// where the well-behaved messages landed, and with which headers
		rawProd.mu.Lock()
		var pv []string
		for _, g := range rawProd.gs {
			pv = append(pv, g.data)
		}
		rawProd.mu.Unlock()
		sort.Strings(pv)
		if want := []string{"bad-run", "conflict", "env-only", "prod", "stale"}; !slices.Equal(pv, want) {
			t.Errorf("production subject carried %v, want %v", pv, want)
		}
		if stale.Header.Get(bus.HeaderRun) != "" || stale.Header.Get("Keep") != "1" {
			t.Errorf("stale mark header not stripped: %v", stale.Header)
		}
	})
}

func TestLanes(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		p := uniq()
		var lanes envtag.SwapLanes
		lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
		trunk := newShadow(t, slnats.WithShadowSubjects(p+".>"), slnats.WithLanes(&lanes))
		lane := newShadow(t, slnats.WithShadowSubjects(p+".>"), slnats.WithEnv("proj-a"))
		nc := connect(t, url)
		var ts, ls sink
		tsub, err := trunk.Conn(nc).QueueSubscribe(p+".orders", "svc", ts.handler)
		if err != nil {
			t.Fatal(err)
		}
		defer tsub.Unsubscribe()
		lsub, err := lane.Conn(nc).QueueSubscribe(p+".orders", "svc", ls.handler)
		if err != nil {
			t.Fatal(err)
		}
		if lsub.Production.Queue != "svc-proj-a" || lsub.Shadow.Queue != "svc-proj-a_shadow" {
			t.Fatalf("lane queues %q %q", lsub.Production.Queue, lsub.Shadow.Queue)
		}
		pub := trunk.Conn(nc)
		for _, m := range []struct{ run, env, data string }{
			{"", "", "untagged"}, {"", "proj-a", "a"}, {"", "proj-b", "b"}, {"r1", "proj-a", "load-a"}, {"r1", "", "load"},
		} {
			if err := pub.Publish(marked(m.run, m.env), p+".orders", []byte(m.data)); err != nil {
				t.Fatal(err)
			}
		}
		tg, lg := ts.wait(t, 3), ls.wait(t, 2)
		if tg["untagged"].mark != (propagation.Mark{}) || tg["b"].mark.Env != "proj-b" || tg["load"].mark.Run != "r1" {
			t.Errorf("trunk handled %v", tg)
		}
		if lg["a"].mark.Env != "proj-a" || lg["load-a"].mark != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
			t.Errorf("lane handled %v", lg)
		}
		// the lane goes away: the trunk takes its env back
		lsub.Unsubscribe()
		lanes.Store(envtag.StaticLanes{})
		if err := pub.Publish(marked("", "proj-a"), p+".orders", []byte("a-after")); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		if tg = ts.wait(t, 4); tg["a-after"].mark.Env != "proj-a" {
			t.Errorf("trunk did not take proj-a back: %v", tg)
		}
	})
}

func TestJetStream(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		p := uniq()
		var refused sink
		s := newShadow(t, slnats.WithShadowSubjects(p+".orders.>"), slnats.WithRefused(func(ctx context.Context, m *natsgo.Msg, err error) { refused.handler(ctx, m) }))
		nc := connect(t, url)
		js := jetStream(t, nc)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream := "ORD_" + p
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{p + ".orders.>"}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			js.DeleteStream(context.Background(), stream)
			js.DeleteStream(context.Background(), s.StreamName(stream))
		})
		if _, err := s.ShadowStream(jetstream.StreamConfig{Name: "X", Subjects: []string{p + ".payments"}}); !errors.Is(err, shadow.ErrNoShadowTarget) {
			t.Fatalf("ShadowStream of an unshadowed subject: err = %v", err)
		}
		sst, err := s.CreateShadowStream(ctx, js, stream)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := sst.CachedInfo().Config; cfg.Name != stream+"_shadow" || !slices.Equal(cfg.Subjects, []string{"shadow." + p + ".orders.>"}) {
			t.Fatalf("shadow stream config = %s %v", cfg.Name, cfg.Subjects)
		}

		subj := p + ".orders.created"
		publish := func(ctx context.Context, data string) {
			t.Helper()
			if _, err := s.JetStream(js).Publish(ctx, subj, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		mctx := propagation.With(ctx, propagation.Mark{Run: "r1"})
		for _, d := range []string{"p0", "p1", "p2"} {
			publish(ctx, d)
		}
		for _, d := range []string{"l0", "l1"} {
			publish(mctx, d)
		}
		if _, err := js.PublishMsg(ctx, &natsgo.Msg{Subject: subj, Data: []byte("bad"), Header: natsgo.Header{bus.HeaderRun: {"no good"}}}); err != nil {
			t.Fatal(err)
		}

		var (
			mu      sync.Mutex
			ok      = map[string]propagation.Mark{}
			tries   = map[string]int{}
			allDone = make(chan struct{})
		)
		h := func(ctx context.Context, m jetstream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			d := string(m.Data())
			tries[d]++
			if d == "p1" && tries[d] == 1 {
				return errors.New("transient failure")
			}
			if _, dup := ok[d]; dup {
				t.Errorf("%s handled twice", d)
			}
			ok[d] = propagation.FromContext(ctx)
			if len(ok) == 5 {
				close(allDone)
			}
			return nil
		}
		cons, err := s.ConsumeJetStream(ctx, js, stream, jetstream.ConsumerConfig{Durable: "svc", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Second}, h)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Stop()
		if !slices.Equal(cons.Consumers, []string{"svc", "svc_shadow"}) {
			t.Errorf("consumers = %v", cons.Consumers)
		}
		select {
		case <-allDone:
		case <-ctx.Done():
			mu.Lock()
			t.Fatalf("handled %v", ok)
		}
		refused.wait(t, 1)
		mu.Lock()
		defer mu.Unlock()
		for d, m := range ok {
			if (d[0] == 'l') != m.LoadTest() || (d[0] == 'l' && m.Run != "r1") {
				t.Errorf("%s handled with mark %v", d, m)
			}
		}
		if tries["p1"] != 2 {
			t.Errorf("p1 tried %d times, want 2 (nak then redelivery)", tries["p1"])
		}
		if _, handled := tries["bad"]; handled {
			t.Error("malformed message reached the handler")
		}
		for name, want := range map[string]uint64{stream: 4, stream + "_shadow": 2} {
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != want {
				t.Errorf("stream %s holds %d messages, want %d", name, info.State.Msgs, want)
			}
		}
	})
}
