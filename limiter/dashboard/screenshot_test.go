package dashboard_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/dashboard"
	"github.com/shadowlane/shadowlane/propagation"
)

// TestScreenshot renders the live page under mixed traffic to the PNG file
// named by SHADOWLANE_DASHBOARD_SCREENSHOT (skipped when unset), so a
// person can look at it:
//
//	SHADOWLANE_DASHBOARD_SCREENSHOT=/tmp/limits.png go test -run Screenshot ./limiter/dashboard/
func TestScreenshot(t *testing.T) {
	out := os.Getenv("SHADOWLANE_DASHBOARD_SCREENSHOT")
	if out == "" {
		t.Skip("SHADOWLANE_DASHBOARD_SCREENSHOT not set")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found")
	}
	l := limiter.New(limiter.WithAlertFunc(func(limiter.Alert) {}), limiter.WithSystem(limiter.SystemRule{CPU: 0.9, CPUUsage: func() float64 { return 0.35 }}))
	if err := l.SetRules([]limiter.Rule{
		{Name: "orders", Resource: "GET /orders/:id", QPS: 80, Burst: 8, Concurrency: 20, LoadTestShare: 0.25},
		{Name: "checkout", Resource: "POST /checkout", QPS: 60, WarmUp: 10 * time.Second},
		{Name: "pay-lt", Resource: "POST /pay", Class: limiter.ClassLoadTest, QPS: 20, MaxWait: 50 * time.Millisecond},
		{Name: "pay-cb", Resource: "POST /pay", Breaker: &limiter.BreakerRule{Strategy: limiter.ErrorRatio, Threshold: 0.5, MinRequests: 10}},
		{Name: "per-caller", Resource: "GET /search", QPS: 5, Param: &limiter.ParamRule{Key: "caller"}},
		{Name: "redis-canary", Resource: "redis:*", Env: "proj-42", Concurrency: 4, DryRun: true},
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.Handler(l))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prodCtx := context.Background()
	ltCtx := propagation.With(prodCtx, propagation.Mark{Run: "drill-7"})
	var wg sync.WaitGroup
	drive := func(res *limiter.Resource, c context.Context, every time.Duration, fail func(int) bool) {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if tok, err := res.Entry(c); err == nil {
					var e error
					if fail != nil && fail(i) {
						e = errors.New("downstream")
					}
					tok.ExitErr(e)
				}
			}
		})
	}
	drive(l.Resource("GET /orders/:id"), prodCtx, 20*time.Millisecond, nil)
	drive(l.Resource("GET /orders/:id"), ltCtx, 8*time.Millisecond, nil)
	drive(l.Resource("POST /checkout"), prodCtx, 10*time.Millisecond, nil)
	drive(l.Resource("POST /pay"), ltCtx, 25*time.Millisecond, func(i int) bool { return i%3 == 0 })
	drive(l.Resource("redis:GET"), prodCtx, 50*time.Millisecond, nil)
	time.Sleep(20 * time.Second)
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--screenshot="+out, "--window-size=1400,1800", srv.URL+"/")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	cancel()
	wg.Wait()
	t.Logf("screenshot written to %s", out)
}
