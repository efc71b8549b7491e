package slgin_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/limiter"
)

func call(t *testing.T, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
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

func internalRuntime(t *testing.T, lc shadowlane.LimitsConfig) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Limits: lc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestLimitRouteTemplate(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{
		{Name: "orders", Resource: "GET /orders/:id", QPS: 0.5, Burst: 2},
		{Name: "lost", Resource: "* _unmatched", QPS: 0.5, Burst: 1},
	}); err != nil {
		t.Fatal(err)
	}
	rt := internalRuntime(t, shadowlane.LimitsConfig{})
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)), slgin.Limit(slgin.WithLimiter(l)))
	r.GET("/orders/:id", func(c *gin.Context) { c.String(200, "order "+c.Param("id")) })
	r.GET("/health", func(c *gin.Context) { c.String(200, "ok") })
	srv := httptest.NewServer(r)
	defer srv.Close()

	for i, want := range []int{200, 200, 429} { // three ids, one resource
		if got := call(t, "GET", fmt.Sprintf("%s/orders/%d", srv.URL, i)).StatusCode; got != want {
			t.Fatalf("request %d: %d, want %d", i, got, want)
		}
	}
	resp := call(t, "GET", srv.URL+"/orders/9")
	if resp.Header.Get("Retry-After") != "2" || resp.Header.Get("RateLimit") != `"orders";r=0;t=2` ||
		resp.Header.Get("RateLimit-Policy") != `"orders";q=1;w=1` {
		t.Fatalf("429 headers %v", resp.Header)
	}
	for range 5 {
		if got := call(t, "GET", srv.URL+"/health").StatusCode; got != 200 {
			t.Fatalf("unlimited route: %d", got)
		}
	}
	// Unmatched requests share one resource whatever the path or method.
	if got := call(t, "GET", srv.URL+"/nope/1").StatusCode; got != 404 {
		t.Fatalf("first unmatched: %d", got)
	}
	if got := call(t, "BREW", srv.URL+"/nope/2").StatusCode; got != 404 {
		t.Fatalf("unmatched, other method: %d", got)
	}
	if got := call(t, "GET", srv.URL+"/nope/3").StatusCode; got != 429 {
		t.Fatalf("second unmatched GET: %d, want 429", got)
	}
	st := l.Resource("GET /orders/:id").Stats().Classes[0].Sum(time.Time{})
	if st.Pass != 2 || st.Blocked.QPS != 2 {
		t.Fatalf("stats %+v", st)
	}
	names := map[string]bool{}
	for _, s := range l.Snapshot() {
		names[s.Resource] = true
	}
	for _, want := range []string{"GET /orders/:id", "GET /health", "GET _unmatched", "_OTHER _unmatched"} {
		if !names[want] {
			t.Errorf("no resource %q in %v", want, names)
		}
	}
}

func TestLimitLoadTestShedAndBreaker(t *testing.T) {
	rt := internalRuntime(t, shadowlane.LimitsConfig{Rules: []shadowlane.LimitRuleConfig{
		{Name: "pay-lt", Resource: "POST /pay", Class: "loadtest", QPS: 0.1, Burst: 1},
		{Name: "pay-cb", Resource: "POST /pay", Breaker: &shadowlane.BreakerConfig{Strategy: "error_count", Threshold: 2, MinRequests: 2, OpenFor: time.Hour}},
	}})
	fail := false
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)), slgin.Limit(slgin.WithRuntime(rt)))
	r.POST("/pay", func(c *gin.Context) {
		if fail {
			c.String(500, "down")
			return
		}
		c.String(200, "paid")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	lt := []string{"X-Shadowlane-Run", "drill-1"}
	if got := call(t, "POST", srv.URL+"/pay", lt...).StatusCode; got != 200 {
		t.Fatalf("first load-test: %d", got)
	}
	if got := call(t, "POST", srv.URL+"/pay", lt...).StatusCode; got != 429 {
		t.Fatalf("second load-test: %d, want 429", got)
	}
	for range 3 {
		if got := call(t, "POST", srv.URL+"/pay").StatusCode; got != 200 {
			t.Fatalf("production: %d", got)
		}
	}
	fail = true
	codes := []int{}
	for range 4 {
		codes = append(codes, call(t, "POST", srv.URL+"/pay").StatusCode)
	}
	if fmt.Sprint(codes) != "[500 500 429 429]" {
		t.Fatalf("codes %v: want two 500s to open the breaker", codes)
	}
	if s, ok := rt.Limiter().BreakerState("POST /pay", "pay-cb"); !ok || s != limiter.Open {
		t.Fatalf("breaker %v %v", s, ok)
	}
}

const goodYAML = `
trust: {mode: internal}
limits:
  rules:
    - name: orders
      resource: "GET /orders/:id"
      qps: 0.1
      burst: 1
  system: {cpu: 0.95, loadTestCpu: 0.9}
`

func TestLimitsFromYAMLAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shadowlane.yaml")
	if err := os.WriteFile(file, []byte(goodYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := shadowlane.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := shadowlane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if s := rt.Limiter().System(); s == nil || s.CPU != 0.95 {
		t.Fatalf("system rule %+v", s)
	}
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)), slgin.Limit(slgin.WithRuntime(rt)))
	r.GET("/orders/:id", func(c *gin.Context) { c.String(200, "ok") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	if a, b := call(t, "GET", srv.URL+"/orders/1").StatusCode, call(t, "GET", srv.URL+"/orders/2").StatusCode; a != 200 || b != 429 {
		t.Fatalf("codes %d %d, want 200 429", a, b)
	}

	// An invalid reload names every bad field and keeps the old rules.
	bad := strings.Replace(goodYAML, "burst: 1", `burst: -1
      class: staging
      breaker: {strategy: sometimes, threshold: 0}
    - resource: "GET /orders/:id"
      qps: 5
      maxWait: -1s
    - {name: orders, resource: x, concurrency: 1}`, 1)
	bad = strings.Replace(bad, "loadTestCpu: 0.9", "loadTestCpu: 0.99", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg2, err := shadowlane.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	err = rt.Apply(cfg2)
	if !errors.Is(err, shadowlane.ErrConfig) {
		t.Fatalf("Apply(bad) = %v, want ErrConfig", err)
	}
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *shadowlane.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	want := "[limits.rules[0].breaker.strategy limits.rules[0].class limits.rules[0].burst limits.rules[1].maxWait limits.rules[2].name limits.system.loadTestCpu]"
	if fmt.Sprint(fields) != want {
		t.Fatalf("bad fields %v\nwant %s\nerr: %v", fields, want, err)
	}
	if rules := rt.Limiter().Rules(); len(rules) != 1 || rules[0].QPS != 0.1 {
		t.Fatalf("rules after a failed reload: %+v", rules)
	}
	if got := call(t, "GET", srv.URL+"/orders/3").StatusCode; got != 429 {
		t.Fatalf("old rule (and its state) not kept: %d", got)
	}

	// A valid reload takes effect at once.
	cfg3 := cfg
	cfg3.Limits.Rules[0].QPS, cfg3.Limits.Rules[0].Burst = 1000, 100
	cfg3.Limits.System = nil
	if err := rt.Apply(cfg3); err != nil {
		t.Fatal(err)
	}
	if got := call(t, "GET", srv.URL+"/orders/4").StatusCode; got != 200 {
		t.Fatalf("after reload: %d", got)
	}
	if rt.Limiter().System() != nil {
		t.Fatal("system protection not turned off by reload")
	}
}

func TestLimitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under -race (sync.Pool drops items at random); run without -race, or see bench/")
	}
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "GET /orders/:id", QPS: 1e9, Burst: 1e6, Concurrency: 100}}); err != nil {
		t.Fatal(err)
	}
	h := func(c *gin.Context) { c.Status(204) }
	measure := func(mw ...gin.HandlerFunc) float64 {
		r := gin.New()
		r.Use(mw...)
		r.GET("/orders/:id", h)
		req := httptest.NewRequest("GET", "/orders/7", nil)
		w := httptest.NewRecorder()
		return testing.AllocsPerRun(200, func() { r.ServeHTTP(w, req) })
	}
	base, with := measure(), measure(slgin.Limit(slgin.WithLimiter(l)))
	if with > base {
		t.Fatalf("Limit adds %v allocations per request (%v without, %v with)", with-base, base, with)
	}
}

func ExampleLimit() {
	l := limiter.New()
	_ = l.SetRules([]limiter.Rule{{Resource: "GET /orders/:id", QPS: 1, Burst: 1}})
	r := gin.New()
	r.Use(slgin.Middleware(), slgin.Limit(slgin.WithLimiter(l))) // resource "GET /orders/:id"
	r.GET("/orders/:id", func(c *gin.Context) { c.String(200, "ok") })

	for range 2 {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/orders/42", nil))
		fmt.Printf("%d retry-after=%q\n", w.Code, w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 retry-after=""
	// 429 retry-after="1"
}

func TestPerCallerFromYAML(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	yaml := `
trust: {mode: internal}
limits:
  rules:
    - name: per-caller
      resource: "POST /orders"
      qps: 0.1
      burst: 1
      param: {key: "header:X-Caller", maxValues: 100, overrides: {importer: 1000}}
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := shadowlane.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := shadowlane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)), slgin.Limit(slgin.WithRuntime(rt)))
	r.POST("/orders", func(c *gin.Context) { c.Status(201) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	var got []int
	for _, c := range []string{"shop-1", "shop-1", "shop-2", "importer", "importer", "importer"} {
		got = append(got, call(t, "POST", srv.URL+"/orders", "X-Caller", c).StatusCode)
	}
	if fmt.Sprint(got) != "[201 429 201 201 201 201]" {
		t.Fatalf("codes %v", got)
	}
	// A bad param rule names its fields.
	cfg.Limits.Rules[0].Param.Key = ""
	cfg.Limits.Rules[0].Concurrency = 3
	err = rt.Apply(cfg)
	for _, want := range []string{"limits.rules[0].param.key: empty", "limits.rules[0].param.key: a param rule sets only qps and burst"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
