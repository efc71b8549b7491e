package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/dashboard"
	"github.com/shadowlane/shadowlane/propagation"
)

// busy returns a limiter with traffic on two resources, some of it blocked.
func busy(t *testing.T) *limiter.Limiter {
	t.Helper()
	l := limiter.New(limiter.WithAlertFunc(func(limiter.Alert) {}), limiter.WithAlertQuiet(time.Minute))
	if err := l.SetRules([]limiter.Rule{
		{Name: "orders", Resource: "GET /orders/:id", QPS: 5, Burst: 5},
		{Name: "pay-lt", Resource: "POST /pay", Class: limiter.ClassLoadTest, Concurrency: 1},
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lt := propagation.With(ctx, propagation.Mark{Run: "drill-1"})
	orders, pay := l.Resource("GET /orders/:id"), l.Resource("POST /pay")
	for range 20 {
		if tok, err := orders.Entry(ctx); err == nil {
			tok.Exit()
		}
	}
	held, err := pay.Entry(lt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(held.Exit)
	for range 3 {
		if _, err := pay.Entry(lt); err == nil {
			t.Fatal("want a concurrency block")
		}
	}
	return l
}

func TestJSONView(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler(busy(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var v dashboard.View
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if len(v.Rules) != 2 || len(v.Resources) != 2 || len(v.Blocking) != 2 {
		t.Fatalf("view: %d rules, %d resources, %d blocking", len(v.Rules), len(v.Resources), len(v.Blocking))
	}
	got := map[string]limiter.Totals{}
	for _, x := range v.Totals {
		got[x.Resource+"|"+x.Class] = x
	}
	if o := got["GET /orders/:id|production"]; o.Pass != 5 || o.Blocked.QPS != 15 {
		t.Fatalf("orders totals %+v", o)
	}
	if p := got["POST /pay|loadtest"]; p.Pass != 1 || p.Blocked.Concurrency != 3 || p.InFlight != 1 {
		t.Fatalf("pay totals %+v", p)
	}
	if r, _ := http.Post(srv.URL, "text/plain", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", r.Status)
	}
}

// chromium renders url headless and returns the DOM after the page's
// scripts ran, and chromium's log.
func chromium(t *testing.T, url string) (dom, log string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("SHADOWLANE_REQUIRE_SERVICES") == "1" {
			t.Fatal("chromium not found and SHADOWLANE_REQUIRE_SERVICES=1: install Debian's chromium package")
		}
		t.Skip("chromium not found: install Debian's chromium package (apt-get install -y chromium) to check the live page")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=4000", "--dump-dom", url)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.String())
	}
	return out.String(), errb.String()
}

var (
	nonzeroRE = regexp.MustCompile(`data-nonzero="(\d+)"`)
	errorsRE  = regexp.MustCompile(`(?s)<pre id="errors"([^>]*)>(.*?)</pre>`)
)

func TestLivePageInChromium(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler(busy(t)))
	defer srv.Close()
	dom, log := chromium(t, srv.URL+"/")
	if m := errorsRE.FindStringSubmatch(dom); m == nil || !strings.Contains(m[1], "hidden") || m[2] != "" {
		t.Fatalf("page reported errors: %q", m)
	}
	if strings.Contains(log, "Uncaught") || strings.Contains(log, ":ERROR:CONSOLE") {
		t.Fatalf("console errors in chromium's log:\n%s", log)
	}
	if !strings.Contains(dom, `data-rendered="`) {
		t.Fatalf("page never rendered:\n%s", dom)
	}
	charts := nonzeroRE.FindAllStringSubmatch(dom, -1)
	if len(charts) != 3 { // overview + one per resource
		t.Fatalf("%d charts, want 3:\n%s", len(charts), dom)
	}
	for _, c := range charts {
		if n, _ := strconv.Atoi(c[1]); n == 0 {
			t.Fatalf("a chart has no data points: %v\n%s", charts, dom)
		}
	}
	for _, want := range []string{"GET /orders/:id", "POST /pay", "pay-lt blocks POST /pay (concurrency, loadtest, 3 so far)", "orders",
		">-30 s</text>", " UTC</text>", // the traffic chart's time axis
		"load-test share", "<td>loadtest</td>", // the rules table: scope and share
		`<td class="n lt">`, // top resources split by class
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q:\n%s", want, dom)
		}
	}
}

// TestLivePageReportsErrors proves the check above can fail: a JSON view
// the page cannot render shows up in the page's error box.
func TestLivePageReportsErrors(t *testing.T) {
	h := dashboard.Handler(limiter.New())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"time":"2025-01-01T00:00:00Z","resources":null,"rules":[],"blocking":[]}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dom, _ := chromium(t, srv.URL+"/")
	m := errorsRE.FindStringSubmatch(dom)
	if m == nil || strings.Contains(m[1], "hidden") || !strings.Contains(m[2], "render: TypeError") {
		t.Fatalf("broken view not reported: %q", m)
	}
}

var _ = errors.New

// TestJSONViewWithSystem: a system rule (whose CPUUsage is a func) is part
// of the JSON view, which used to fail to encode and answer 200 with an
// empty body.
func TestJSONViewWithSystem(t *testing.T) {
	l := limiter.New(limiter.WithSystem(limiter.SystemRule{CPU: 0.8, LoadTestCPU: 0.5, CPUUsage: func() float64 { return 0.3 }}))
	if err := l.SetRules([]limiter.Rule{{Resource: "a", QPS: 10}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.Handler(l))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var v dashboard.View
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decoding the view: %v", err)
	}
	if v.System == nil || v.System.CPU != 0.8 || v.System.LoadTestCPU != 0.5 || len(v.Rules) != 1 {
		t.Fatalf("view: system %+v, %d rules", v.System, len(v.Rules))
	}
}
