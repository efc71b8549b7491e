package loadrun

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/evidence"
)

const chromium = "/usr/bin/chromium"

// syntheticReport is a two-part run with errors, an abort and evidence,
// built from results lines as `report merge` builds it.
func syntheticReport(t *testing.T) *Report {
	t.Helper()
	agg := NewAggregator()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	targets := []TargetInfo{{Name: "buy", Method: "POST", URL: "http://shop/buy", Weight: 4}, {Name: "health", Method: "GET", URL: "http://shop/items/1", Probe: true, Weight: 1}}
	for part := 1; part <= 2; part++ {
		add := func(l Line) {
			if err := agg.Add(&l); err != nil {
				t.Fatal(err)
			}
		}
		add(Line{Kind: "start", V: ResultsVersion, Run: "run-html", Scenario: "checkout", Part: part, Parts: 2, Host: "lg" + itoa(uint64(part)),
			Bucket: time.Second, Stages: []Stage{{5 * time.Second, 40}, {5 * time.Second, 40}}, Targets: targets, T: t0.UnixNano()})
		add(Line{Kind: "token", T: t0.UnixNano(), Exp: t0.Add(time.Minute).Unix()})
		for i := range 150 {
			at := t0.Add(time.Duration(i) * 60 * time.Millisecond)
			code := 200
			if i%37 == 0 {
				code = 503
			}
			tg := "buy"
			if i%5 == 0 {
				tg = "health"
			}
			l := Line{Kind: "req", T: at.UnixNano(), Target: tg, Probe: tg == "health", Seq: uint64(i*2 + part - 1), Code: code, Lat: int64(time.Duration(1+i%20) * time.Millisecond)}
			if i == 149 {
				l.Code, l.Err = 0, "dial tcp 127.0.0.1:8080: connect: connection refused"
			}
			add(l)
		}
		if part == 2 {
			add(Line{Kind: "abort", T: t0.Add(8 * time.Second).UnixNano(), Reason: "p99 900ms over the last 10s (120 load-test requests) > 800ms"})
			d := evidence.Status{Service: "orders", Run: "run-html", Known: true,
				Entries:   []evidence.Entry{{Entry: "http", Route: "POST /orders", Marked: 240}},
				Decisions: []evidence.Decision{{Store: "sql", Target: "orders", Decision: "redirect", To: "orders_shadow", N: 240}}}
			add(Line{Kind: "evidence", T: t0.Add(9 * time.Second).UnixNano(), Service: &ServiceEvidence{URL: "http://127.0.0.1:9464", Label: evidence.Label(d), Diff: d, Lines: evidence.Lines(d), AtUnix: t0.Add(9 * time.Second).UnixNano()}})
		}
		add(Line{Kind: "end", T: t0.Add(9 * time.Second).UnixNano()})
	}
	return agg.Report()
}

// TestHTMLReportRendersInChromium loads the report in headless Chromium,
// offline: the charts and tables its script builds are in the DOM, and
// the page recorded no script error.
func TestHTMLReportRendersInChromium(t *testing.T) {
	r := syntheticReport(t)
	var b bytes.Buffer
	if err := r.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Find(b.Bytes()); m != nil {
		t.Errorf("report references an external asset: %s", m)
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("SHADOWLANE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is required under SHADOWLANE_REQUIRE_SERVICES=1 (apt-get install chromium): %v", chromium, err)
		}
		t.Skipf("skipping: %s not found (apt-get install chromium to run the HTML report check)", chromium)
	}
	path, err := r.WriteDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dom := dumpDOM(t, path)
	for _, want := range []string{
		`id="render-status" data-state="rendered"`, `id="summary-cards"`,
		`<svg id="throughput-chart"`, `data-key="asked"`, `data-key="buy"`, `data-key="health"`, `class="abort-mark"`,
		`<svg id="latency-chart-0"`, `<svg id="latency-chart-1"`, `data-key="p99"`,
		`id="targets-table"`, `production probe`, `<svg id="status-chart"`, `id="status-table"`, `id="errors-table"`, `connection refused`,
		`id="aborts-table"`, `p99 900ms`, `id="services-table"`, `orders@trunk: 240 load-test SQL statements 240 -&gt; orders_shadow (redirect), 0 to production, 0 refused`,
		`id="parts-table"`, `lg2`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if n := strings.Count(dom, `class="page-error"`); n != 0 {
		i := strings.Index(dom, `class="page-error"`)
		t.Errorf("the page recorded %d script errors, first: %.300s", n, dom[i:])
	}
}

func dumpDOM(t *testing.T, path string) string {
	t.Helper()
	abs, _ := filepath.Abs(path)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+abs)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}
