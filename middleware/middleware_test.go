package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

const secret = "0123456789abcdef0123456789abcdef"

type seen struct {
	mu    sync.Mutex
	marks map[string][]propagation.Mark
}

func (s *seen) add(hop string, m propagation.Mark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks[hop] = append(s.marks[hop], m)
}

func (s *seen) last(hop string) propagation.Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.marks[hop]
	if len(l) == 0 {
		return propagation.Mark{Run: "<none>"}
	}
	return l[len(l)-1]
}

type chain struct {
	gw, relay, svc, third *httptest.Server
	edge, internal        *shadowlane.Runtime
	seen                  *seen
	thirdHits             func() int
}

// newChain starts: edge gateway (shadowlane, edge) -> relay (OpenTelemetry
// only: TraceContext + Baggage) -> service (shadowlane, internal) -> a third
// party (plain server) that load-test traffic must not reach.
func newChain(t *testing.T) *chain {
	c := &chain{seen: &seen{marks: map[string][]propagation.Mark{}}}
	var hitsMu sync.Mutex
	hits := 0
	c.third = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsMu.Lock()
		hits++
		hitsMu.Unlock()
		fmt.Fprint(w, "real-payment")
	}))
	c.thirdHits = func() int { hitsMu.Lock(); defer hitsMu.Unlock(); return hits }
	var err error
	c.internal, err = shadowlane.New(shadowlane.Config{Service: "svc", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Mocks: []shadowlane.MockConfig{{Host: "mock.invalid", Body: "mocked-payment"}}}})
	if err != nil {
		t.Fatal(err)
	}
	c.edge, err = shadowlane.New(shadowlane.Config{Service: "gw", Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}}) // the relay and the service are ours
	if err != nil {
		t.Fatal(err)
	}
	client := middleware.Client(nil, middleware.WithRuntime(c.internal))
	c.svc = httptest.NewServer(middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.seen.add("svc", propagation.FromContext(r.Context()))
		target := c.third.URL
		if r.URL.Query().Get("pay") == "mock" {
			target = "http://mock.invalid/charge"
		}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", target, nil)
		resp, err := client.Do(req)
		if err != nil {
			var se *shadow.Error
			if errors.As(err, &se) && errors.Is(err, shadow.ErrBlocked) {
				fmt.Fprint(w, "payment blocked")
				return
			}
			http.Error(w, err.Error(), 500)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.Write(b)
	}), middleware.WithRuntime(c.internal)))
	otelOnly := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{})
	c.relay = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otelOnly.Extract(r.Context(), otelprop.HeaderCarrier(r.Header))
		c.seen.add("relay", propagation.FromContext(ctx)) // knows nothing of shadowlane: always zero
		req, _ := http.NewRequestWithContext(ctx, "GET", c.svc.URL+"/?"+r.URL.RawQuery, nil)
		otelOnly.Inject(ctx, otelprop.HeaderCarrier(req.Header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	gwClient := middleware.Client(nil, middleware.WithRuntime(c.edge))
	c.gw = httptest.NewServer(middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.seen.add("gw", propagation.FromContext(r.Context()))
		req, _ := http.NewRequestWithContext(r.Context(), "GET", c.relay.URL+"/?"+r.URL.RawQuery, nil)
		resp, err := gwClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}), middleware.WithRuntime(c.edge), middleware.Edge()))
	t.Cleanup(func() {
		c.gw.Close()
		c.relay.Close()
		c.svc.Close()
		c.third.Close()
		c.edge.Close()
		c.internal.Close()
	})
	return c
}

func (c *chain) get(t *testing.T, query string, h map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.gw.URL+"/?"+query, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestThreeHopChain(t *testing.T) {
	c := newChain(t)
	tok, err := c.edge.Keyring().Sign("run-7", "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	lt := propagation.Mark{Run: "run-7"}

	// production: reaches the real third party
	code, body := c.get(t, "", nil)
	if code != 200 || body != "real-payment" || !c.seen.last("gw").IsZero() || !c.seen.last("svc").IsZero() {
		t.Fatalf("production: %d %q gw=%v svc=%v", code, body, c.seen.last("gw"), c.seen.last("svc"))
	}
	hits := c.thirdHits()

	// signed load-test: mark crosses the OTel-only relay in baggage; the third party is blocked
	code, body = c.get(t, "", map[string]string{"X-Shadowlane-Run": "run-7", "X-Shadowlane-Token": tok})
	if code != 200 || body != "payment blocked" {
		t.Fatalf("load-test: %d %q", code, body)
	}
	if c.seen.last("gw") != lt || c.seen.last("svc") != lt || !c.seen.last("relay").IsZero() {
		t.Fatalf("marks: gw=%v relay=%v svc=%v", c.seen.last("gw"), c.seen.last("relay"), c.seen.last("svc"))
	}
	if c.thirdHits() != hits {
		t.Fatal("load-test traffic reached the third party")
	}
	// mocked third party
	if _, body = c.get(t, "pay=mock", map[string]string{"X-Shadowlane-Run": "run-7", "X-Shadowlane-Token": tok}); body != "mocked-payment" {
		t.Fatalf("mock: %q", body)
	}

	// forged: no token, bad token, token of another run -> refused at the
	// edge (403 with the reason), never production
	hits = c.thirdHits()
	for _, h := range []map[string]string{
		{"X-Shadowlane-Run": "run-7"},
		{"X-Shadowlane-Run": "run-7", "X-Shadowlane-Token": tok[:len(tok)-1] + "x"},
		{"X-Shadowlane-Run": "run-8", "X-Shadowlane-Token": tok},
		{"Baggage": "shadowlane.run=run-7"},
	} {
		code, body = c.get(t, "", h)
		if code != 403 || !strings.Contains(body, "untrusted load-test mark") {
			t.Fatalf("forged %v: %d %q", h, code, body)
		}
	}
	if c.thirdHits() != hits {
		t.Fatal("a refused forged request reached the third party")
	}
	if n := c.edge.Stats().TokensRejected; n["missing"] < 2 || n["bad_signature"] != 1 || n["mismatch"] != 1 {
		t.Fatalf("token rejections %v", n)
	}

	// env-tagged production traffic keeps its tag across all hops
	c.get(t, "", map[string]string{"X-Shadowlane-Env": "proj-a"})
	if c.seen.last("svc") != (propagation.Mark{Env: "proj-a"}) {
		t.Fatalf("env: svc=%v", c.seen.last("svc"))
	}

	// kill switch at the internal service: 503 with the reason, production untouched
	c.internal.SetLoadTest(false, "incident-9")
	code, body = c.get(t, "", map[string]string{"X-Shadowlane-Run": "run-7", "X-Shadowlane-Token": tok})
	if code != 503 || !strings.Contains(body, "incident-9") {
		t.Fatalf("kill switch: %d %q", code, body)
	}
	if code, body = c.get(t, "", nil); code != 200 || body != "real-payment" {
		t.Fatalf("production under kill switch: %d %q", code, body)
	}
}

func TestTransportStripsStaleMarkHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer srv.Close()
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	client := middleware.Client(nil, middleware.WithRuntime(rt))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL, nil)
	// a proxy copied a forged mark from an inbound request the edge stripped
	req.Header.Set("X-Shadowlane-Run", "forged")
	req.Header.Set("Baggage", "a=1,shadowlane.run=forged")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-got
	if h.Get("X-Shadowlane-Run") != "" || h.Get("Baggage") != "a=1" {
		t.Fatalf("stale mark forwarded: %v", h)
	}
	if req.Header.Get("X-Shadowlane-Run") != "forged" {
		t.Fatal("the caller's request was modified")
	}
}

func BenchmarkHandlerUnmarked(b *testing.B) {
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	h := middleware.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), middleware.WithRuntime(rt))
	req := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
