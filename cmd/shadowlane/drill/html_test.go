package drill

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const chromium = "/usr/bin/chromium"

// TestHTMLReportRendersInChromium runs a small drill, writes its HTML
// report and loads it in headless Chromium, offline: the charts and
// tables the page's own script builds must be in the DOM, with no script
// error recorded by the page (window.onerror, console.error).
func TestHTMLReportRendersInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("SHADOWLANE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is required under SHADOWLANE_REQUIRE_SERVICES=1 (apt-get install chromium): %v", chromium, err)
		}
		t.Skipf("skipping: %s not found (apt-get install chromium to run the HTML report check)", chromium)
	}
	rep, err := Run(context.Background(), Options{Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatal("drill not OK")
	}
	dir := t.TempDir()
	path, err := rep.WriteReportDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	// Self-contained: no external asset of any kind.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Find(raw); m != nil {
		t.Errorf("report references an external asset: %s", m)
	}
	dom := dumpDOM(t, path)
	for _, want := range []string{
		`id="render-status" data-state="rendered"`,
		`<svg id="traffic-chart"`, `class="series" data-class="production"`, `data-class="loadtest"`,
		`<svg id="latency-chart"`, `class="bar"`,
		`<svg id="blocks-chart"`,
		`id="invariants-table"`, `id="isolation-sql"`, `id="isolation-redis"`, `id="isolation-kafka"`, `id="isolation-nats"`, `SHIPMENTS_shadow`,
		`id="routing-table"`, `id="consumers-table"`, `id="latency-table"`, `id="blocks-table"`, `id="summary-cards"`,
		`orders_shadow`, `order-events_shadow`, `kill switch: gateway (edge)`,
		`id="zones-table"`, `id="zone-picks-table"`, `id="zone-instances-table"`,
		`id="migration-phases-0"`, `id="migration-reader-0"`, `id="migration-targets-0"`, `_order-events-v2_shadow`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if n := strings.Count(dom, `class="page-error"`); n != 0 {
		i := strings.Index(dom, `class="page-error"`)
		t.Errorf("the page recorded %d script errors, first: %.300s", n, dom[i:])
	}
	// Every invariant is a row of the table.
	if got := strings.Count(dom[strings.Index(dom, `id="invariants-table"`):], "<tr"); got < len(rep.Invariants) {
		t.Errorf("invariants table has %d rows, want >= %d", got, len(rep.Invariants))
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
