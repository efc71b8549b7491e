package shadowlane_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

func marked(run string) context.Context {
	return propagation.With(context.Background(), propagation.Mark{Run: run})
}

func get(t *testing.T, h http.Handler, path string, v any) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if v != nil && w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, w.Body)
		}
	}
	return w.Code
}

// Two runtimes in one process with different configs: limits, routing,
// kill switch, outbound rules, decisions and per-run evidence stay apart,
// and neither touches the process-wide defaults.
func TestTwoRuntimesDoNotInterfere(t *testing.T) {
	cfgA := shadowlane.Config{Service: "a", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"pay.a"}},
		Routing:  shadowlane.RoutingConfig{Config: envtag.Config{StrictServices: []string{"ledger"}}},
		Limits:   shadowlane.LimitsConfig{Rules: []shadowlane.LimitRuleConfig{{Resource: "GET /x", QPS: 1, Burst: 1}}}}
	cfgB := shadowlane.Config{Service: "b", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"pay.b"}},
		Routing:  shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {"proj-a"}}}},
		Evidence: shadowlane.EvidenceConfig{Runs: 1}}
	a, err := shadowlane.New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := shadowlane.New(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	defaultPolicy := envtag.DefaultPolicy()

	// Limits: a's rule blocks after its burst; b has no rule.
	if a.Limiter() == b.Limiter() {
		t.Fatal("the runtimes share a limiter")
	}
	if len(a.Limiter().Rules()) != 1 || len(b.Limiter().Rules()) != 0 {
		t.Fatalf("rules: a %d, b %d", len(a.Limiter().Rules()), len(b.Limiter().Rules()))
	}
	blockedA, blockedB := 0, 0
	for range 5 {
		if tok, err := a.Limiter().Admit(context.Background(), "GET /x"); err != nil {
			blockedA++
		} else {
			tok.Exit()
		}
		if tok, err := b.Limiter().Admit(context.Background(), "GET /x"); err != nil {
			blockedB++
		} else {
			tok.Exit()
		}
	}
	if blockedA == 0 || blockedB != 0 {
		t.Fatalf("blocked: a %d (want > 0), b %d (want 0)", blockedA, blockedB)
	}

	// Routing: each its own policy and registry; the process-wide policy
	// is the default runtime's, untouched by either.
	if !a.RoutingPolicy().Strict("ledger") || b.RoutingPolicy().Strict("ledger") {
		t.Fatal("strictServices leaked between runtimes")
	}
	if got := b.RoutingPolicy().Chain("orders", "proj-b"); !slices.Equal(got, []string{"proj-b", "proj-a", ""}) {
		t.Fatalf("b's chain %q", got)
	}
	if a.Registry() == b.Registry() {
		t.Fatal("the runtimes share a registry")
	}
	if envtag.DefaultPolicy() != defaultPolicy {
		t.Fatal("a runtime that is not the default changed envtag.DefaultPolicy")
	}
	// Routing counters: picks of a pool bound to a count in a only.
	pool := envtag.NewPool("ledger-"+t.Name(), a.RoutingPolicy(), []envtag.Member[int]{{Item: 1}}, envtag.PoolStats(a.RoutingStats()))
	for range 3 {
		if _, err := pool.Pick(propagation.Mark{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.RoutingStats().Lookup("ledger-"+t.Name(), propagation.ClassProduction).Trunk; n != 3 {
		t.Fatalf("a counted %d picks, want 3", n)
	}
	if n := b.RoutingStats().Lookup("ledger-"+t.Name(), propagation.ClassProduction).Trunk; n != 0 {
		t.Fatalf("b counted %d of a's picks", n)
	}
	if n := envtag.Lookup("ledger-"+t.Name(), propagation.ClassProduction).Trunk; n != 0 {
		t.Fatalf("the default counters got %d of a's picks", n)
	}

	// Kill switch: off on a only.
	a.SetLoadTest(false, "incident")
	h := http.Header{"X-Shadowlane-Run": {"r1"}}
	if _, ref := a.Admit(context.Background(), &shadowlane.Entry{Name: "http"}, h); ref == nil || ref.Reason != "killswitch" {
		t.Fatalf("a admitted a marked request with load tests off: %+v", ref)
	}
	if _, ref := b.Admit(context.Background(), &shadowlane.Entry{Name: "http"}, h); ref != nil {
		t.Fatalf("b refused: %v", ref.Err)
	}

	// Outbound decisions and their counters: pay.a is allowed on a only.
	call := func(rt *shadowlane.Runtime, host string) error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/", nil)
		_, err := rt.Outbound(marked("r1"), req)
		return err
	}
	if call(a, "pay.a") != nil || !errors.Is(call(b, "pay.a"), shadow.ErrBlocked) {
		t.Fatal("outbound rules leaked between runtimes")
	}
	if n := a.Decisions().Total("http", shadow.Block); n != 0 {
		t.Fatalf("a counted %d blocks of b's call", n)
	}
	if n := b.Decisions().Total("http", shadow.Block); n != 1 {
		t.Fatalf("b counted %d blocks, want 1", n)
	}
	b.Decisions().Record("r1", "sql", "orders", shadow.Redirect)
	if a.Decisions().Total("sql", shadow.Redirect) != 0 {
		t.Fatal("decisions leaked between runtimes")
	}

	// Per-run evidence: a saw r1 refused, b saw it admitted.
	ra, rb := a.RunStatus("r1"), b.RunStatus("r1")
	if len(ra.Entries) != 1 || ra.Entries[0].Refused != 1 || ra.Entries[0].Marked != 0 || ra.Service != "a" {
		t.Fatalf("a's evidence %+v", ra)
	}
	if len(rb.Entries) != 1 || rb.Entries[0].Marked != 1 || rb.Entries[0].Refused != 0 || rb.Service != "b" {
		t.Fatalf("b's evidence %+v", rb)
	}
	// b keeps one run (evidence.runs: 1), a the default.
	b.Decisions().Record("r2", "sql", "orders", shadow.Redirect)
	a.Decisions().Record("r2", "sql", "orders", shadow.Redirect)
	if got := b.Runs(); !slices.Equal(got, []string{"r2"}) {
		t.Fatalf("b's runs %q", got)
	}
	if got := a.Runs(); len(got) != 2 {
		t.Fatalf("a's runs %q", got)
	}
}

// The admin endpoint serves one run's evidence; runs are kept apart, and
// only the last evidence.runs are kept, the least recently seen evicted.
func TestRunEvidenceEndpoint(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Env: "proj-a", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"ledger"}}, Evidence: shadowlane.EvidenceConfig{Runs: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	admin := rt.AdminHandler()
	for i := range 3 {
		for _, run := range []string{"r1", "r2"} {
			if run == "r2" && i > 0 {
				continue
			}
			req := httptest.NewRequest(http.MethodPost, "/orders", nil)
			req.Header.Set("X-Shadowlane-Run", run)
			ctx, ref := rt.Admit(context.Background(), &shadowlane.Entry{Name: "http"}, shadowlane.RequestCarrier(req))
			if ref != nil {
				t.Fatal(ref.Err)
			}
			rt.Decisions().Add(propagation.FromContext(ctx).Run, "sql", "orders", "orders_shadow", shadow.Redirect, 1)
			out, _ := http.NewRequest(http.MethodGet, "http://ledger/", nil)
			if _, err := rt.Outbound(ctx, out); err != nil {
				t.Fatal(err)
			}
			out, _ = http.NewRequest(http.MethodGet, "http://evil.example/", nil)
			if _, err := rt.Outbound(ctx, out); !errors.Is(err, shadow.ErrBlocked) {
				t.Fatal(err)
			}
			rt.RunError(ctx, "payment timeout")
		}
	}
	// Production work leaves no evidence.
	if _, ref := rt.Admit(context.Background(), &shadowlane.Entry{Name: "http"}, http.Header{}); ref != nil {
		t.Fatal(ref.Err)
	}
	rt.RunError(context.Background(), "not counted")

	var s shadowlane.RunStatus
	if code := get(t, admin, "/shadowlane/status?run=r1", &s); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if !s.Known || s.Run != "r1" || s.Service != "orders" || s.Env != "proj-a" || s.Instance == "" || s.First == "" || s.Last == "" {
		t.Fatalf("header fields %+v", s)
	}
	wantEntries := []shadowlane.RunEntry{{Entry: "http", Route: "POST", Marked: 3}}
	if !slices.Equal(s.Entries, wantEntries) {
		t.Fatalf("entries %+v", s.Entries)
	}
	wantDecisions := []shadowlane.RunDecision{
		{Store: "http", Target: "evil.example", Decision: "block", N: 3},
		{Store: "http", Target: "ledger", Decision: "pass", To: "ledger", N: 3},
		{Store: "sql", Target: "orders", Decision: "redirect", To: "orders_shadow", N: 3},
	}
	if !slices.Equal(s.Decisions, wantDecisions) {
		t.Fatalf("decisions %+v", s.Decisions)
	}
	if !slices.Equal(s.Errors, []shadowlane.RunErrorRows{{Reason: "payment timeout", N: 3}}) {
		t.Fatalf("errors %+v", s.Errors)
	}
	var s2 shadowlane.RunStatus
	get(t, admin, "/shadowlane/status?run=r2", &s2)
	if !s2.Known || s2.Entries[0].Marked != 1 || s2.Decisions[2].N != 1 {
		t.Fatalf("r2 %+v", s2)
	}
	// Unknown run: 200, known false, zero counts (empty lists, not null).
	var s3 map[string]any
	get(t, admin, "/shadowlane/status?run=never", &s3)
	if s3["known"] != false || s3["entries"] == nil || len(s3["entries"].([]any)) != 0 || s3["first"] != "" {
		t.Fatalf("unknown run %v", s3)
	}
	if code := get(t, admin, "/shadowlane/status?run=bad%20id", nil); code != http.StatusBadRequest {
		t.Fatalf("bad run id: %d", code)
	}
	// The plain status lists the runs, most recently seen first.
	var st shadowlane.Stats
	get(t, admin, "/shadowlane/status", &st)
	if !slices.Equal(st.Runs, []string{"r1", "r2"}) {
		t.Fatalf("runs %q", st.Runs)
	}
	// A third run evicts the least recently seen (r2).
	rt.Decisions().Record("r3", "sql", "orders", shadow.Redirect)
	if got := rt.Runs(); !slices.Equal(got, []string{"r3", "r1"}) {
		t.Fatalf("runs after eviction %q", got)
	}
	if rt.RunStatus("r2").Known {
		t.Fatal("r2 not evicted")
	}
}

// The evidence is exported as OTel metrics whose run attribute takes only
// the kept runs.
func TestRunEvidenceMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Evidence: shadowlane.EvidenceConfig{Runs: 3}},
		shadowlane.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, run := range []string{"r1", "r2", "r3", "r4", "r5"} {
		if _, ref := rt.Admit(context.Background(), &shadowlane.Entry{Name: "grpc"}, http.Header{"X-Shadowlane-Run": {run}}); ref != nil {
			t.Fatal(ref.Err)
		}
		rt.Decisions().Record(run, "redis", "SET", shadow.Redirect)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	runs := map[string]map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || (m.Name != "shadowlane.run.requests" && m.Name != "shadowlane.run.decisions") {
				continue
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value("run")
				if runs[m.Name] == nil {
					runs[m.Name] = map[string]bool{}
				}
				runs[m.Name][v.AsString()] = true
				if dp.Value != 1 {
					t.Errorf("%s %v = %d", m.Name, dp.Attributes, dp.Value)
				}
			}
		}
	}
	want := map[string]bool{"r3": true, "r4": true, "r5": true}
	for _, name := range []string{"shadowlane.run.requests", "shadowlane.run.decisions"} {
		if len(runs[name]) != 3 || !runs[name]["r3"] || !runs[name]["r4"] || !runs[name]["r5"] {
			t.Errorf("%s runs %v, want %v", name, runs[name], want)
		}
	}
}

// Unmarked requests leave no evidence and allocate nothing; a marked
// request of a known run counts without allocating in the evidence.
func TestRunEvidenceHotPath(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	plain := http.Header{"Content-Type": {"application/json"}}
	e := &shadowlane.Entry{Name: "http"}
	if n := testing.AllocsPerRun(200, func() { rt.Admit(context.Background(), e, plain) }); n != 0 {
		t.Fatalf("unmarked Admit allocates %v", n)
	}
	if len(rt.Runs()) != 0 {
		t.Fatalf("production traffic created runs %q", rt.Runs())
	}
	d := rt.Decisions()
	d.Record("r1", "redis", "GET", shadow.Redirect)
	if n := testing.AllocsPerRun(200, func() { d.Record("r1", "redis", "GET", shadow.Redirect) }); n != 0 {
		t.Fatalf("a marked decision of a known run allocates %v", n)
	}
}

// CountEntry and RunError count marked work only; a reason is cut to 64
// bytes on a rune boundary, and an empty one is "error".
func TestRunEvidenceCountAndReasons(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx := marked("r-count")
	rt.CountEntry(ctx, "kafka:orders", "billing")
	rt.CountEntry(ctx, "kafka:orders", "billing")
	rt.CountEntry(context.Background(), "kafka:orders", "billing")
	long := strings.Repeat("é", 40) // 80 bytes
	rt.RunError(ctx, long)
	rt.RunError(ctx, "")
	rt.Decisions().RunError("r-count", "sql 23505")
	rt.Decisions().RunError("", "sql 23505") // production: nothing
	rt.RunError(context.Background(), "x")
	s := rt.RunStatus("r-count")
	if !slices.Equal(s.Entries, []shadowlane.RunEntry{{Entry: "kafka:orders", Route: "billing", Marked: 2}}) {
		t.Fatalf("entries %+v", s.Entries)
	}
	want := []shadowlane.RunErrorRows{{Reason: "error", N: 1}, {Reason: "sql 23505", N: 1}, {Reason: strings.Repeat("é", 32), N: 1}}
	if !slices.Equal(s.Errors, want) {
		t.Fatalf("errors %+v", s.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
	for err, want := range map[error]string{
		context.DeadlineExceeded: "timeout", context.Canceled: "canceled", net.ErrClosed: "closed",
		&net.OpError{Op: "read", Err: timeoutErr{}}: "timeout", errors.New("x"): "", nil: "",
	} {
		if got := shadow.ErrorClass(err); got != want {
			t.Errorf("ErrorClass(%v) = %q, want %q", err, got, want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }
