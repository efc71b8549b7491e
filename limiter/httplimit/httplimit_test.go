package httplimit_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/httplimit"
	"github.com/shadowlane/shadowlane/propagation"
)

func routeKey(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/orders/") {
		return r.Method + " /orders/:id"
	}
	return r.Method + " " + r.URL.Path
}

func get(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTooManyRequestsHeaders(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "orders", Resource: "GET /orders/:id", QPS: 0.5, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "order "+r.PathValue("id")) })
	srv := httptest.NewServer(httplimit.Middleware(l, httplimit.WithRouteKey(routeKey))(mux))
	defer srv.Close()

	if resp := get(t, srv.URL+"/orders/1"); resp.StatusCode != 200 {
		t.Fatalf("first: %s", resp.Status)
	}
	resp := get(t, srv.URL+"/orders/2") // same resource, different id
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second: %s, want 429", resp.Status)
	}
	for k, want := range map[string]string{
		"Retry-After":         "2",
		"RateLimit-Policy":    `"orders";q=1;w=1`,
		"RateLimit":           `"orders";r=0;t=2`,
		"RateLimit-Limit":     "1",
		"RateLimit-Remaining": "0",
		"RateLimit-Reset":     "2",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if resp := get(t, srv.URL+"/other"); resp.StatusCode != 404 {
		t.Fatalf("unlimited route: %s", resp.Status)
	}
	st := l.Resource("GET /orders/:id").Stats().Classes[0].Sum(time.Time{})
	if st.Pass != 1 || st.Blocked.QPS != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// breakerLimiter returns a limiter whose rule name opens a breaker on
// every resource after n errors.
func breakerLimiter(t *testing.T, name string, n float64) *limiter.Limiter {
	l := limiter.New()
	err := l.SetRules([]limiter.Rule{{Name: name, Resource: "*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorCount, Threshold: n, MinRequests: 1, OpenFor: time.Minute,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestServerErrorsTripBreaker(t *testing.T) {
	l := breakerLimiter(t, "pay-cb", 3)
	h := httplimit.Middleware(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("panic") != "" {
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get(t, srv.URL+"/pay")
	get(t, srv.URL+"/pay")
	// A panic counts as an error (the client may retry the GET once and
	// see the open breaker's 429).
	if resp, err := http.Get(srv.URL + "/pay?panic=1"); err == nil {
		resp.Body.Close()
	}
	resp := get(t, srv.URL+"/pay")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("RateLimit") != `"pay-cb";r=0;t=60` || resp.Header.Get("RateLimit-Policy") != "" {
		t.Fatalf("after 2 502s and a panic: %s %v", resp.Status, resp.Header)
	}
	if s, ok := l.BreakerState("GET /pay", "pay-cb"); !ok || s != limiter.Open {
		t.Fatalf("breaker state %v %v", s, ok)
	}
}

// TestEarlyHintsThenServerError: an informational status (103 Early
// Hints) is not the answer; the 5xx that follows it counts as an error.
func TestEarlyHintsThenServerError(t *testing.T) {
	l := breakerLimiter(t, "hints-cb", 2)
	h := httplimit.Middleware(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hints", nil))
	}
	if s, ok := l.BreakerState("GET /hints", "hints-cb"); !ok || s != limiter.Open {
		t.Fatalf("after two 103+500 answers: breaker state %v %v", s, ok)
	}
}

func TestLoadTestBudget(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "*", Class: limiter.ClassLoadTest, Concurrency: 1, QPS: 0.001, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	// Stand-in for the shadowlane entry middleware, which puts the mark in ctx.
	mark := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if run := r.Header.Get("X-Run"); run != "" {
				r = r.WithContext(propagation.With(r.Context(), propagation.Mark{Run: run}))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(mark(httplimit.Middleware(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))))
	defer srv.Close()
	if resp := get(t, srv.URL+"/x", "X-Run", "r1"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if resp := get(t, srv.URL+"/x", "X-Run", "r1"); resp.StatusCode != 429 {
		t.Fatalf("second load-test request: %s", resp.Status)
	}
	for range 5 {
		if resp := get(t, srv.URL+"/x"); resp.StatusCode != 200 {
			t.Fatalf("production limited by the load-test budget: %s", resp.Status)
		}
	}
}

// admitAll returns the middleware, on a limiter whose rule admits every
// request, around a handler that writes nothing, and a request for it.
func admitAll(tb testing.TB) (http.Handler, *http.Request) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "*", QPS: 1e9, Burst: 1e9, Concurrency: 100}}); err != nil {
		tb.Fatal(err)
	}
	h := httplimit.Middleware(l, httplimit.WithRouteKey(func(*http.Request) string { return "GET /x" }))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	return h, httptest.NewRequest("GET", "/x", nil)
}

func TestMiddlewareAllocs(t *testing.T) {
	h, req := admitAll(t)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n > 0 {
		t.Fatalf("middleware allocates %v times per request", n)
	}
}

func TestPerCallerHeaderLimit(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "per-caller", Resource: "GET /x", QPS: 0.1, Burst: 2,
		Param: &limiter.ParamRule{Key: "header:X-Caller"}}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httplimit.Middleware(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	codes := map[string][]int{}
	for _, c := range []string{"alice", "alice", "alice", "bob", "bob", "", "", ""} {
		codes[c] = append(codes[c], get(t, srv.URL+"/x", "X-Caller", c).StatusCode)
	}
	if fmt.Sprint(codes["alice"]) != "[200 200 429]" || fmt.Sprint(codes["bob"]) != "[200 200]" || fmt.Sprint(codes[""]) != "[200 200 200]" {
		t.Fatalf("codes by caller %v", codes)
	}
}

// BenchmarkMiddleware is one admitted request through the middleware
// (the status wrapper included) to a handler that writes nothing.
func BenchmarkMiddleware(b *testing.B) {
	h, req := admitAll(b)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
