package httplimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/httplimit"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestTransportBlocksBeforeSending(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	l := limiter.New()
	// Load-test traffic to this host: 1 request, then refused; production unlimited.
	if err := l.SetRules([]limiter.Rule{{Name: "lt-out", Resource: "http:GET " + host, Class: limiter.ClassLoadTest, QPS: 0.1, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: httplimit.Transport(l, nil)}
	ltCtx := propagation.With(context.Background(), propagation.Mark{Run: "drill-1"})
	do := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/pay", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := do(ltCtx); err != nil {
		t.Fatal(err)
	}
	err := do(ltCtx)
	var be *limiter.BlockError
	var ue *url.Error
	if !errors.As(err, &be) || !errors.Is(err, limiter.ErrBlocked) || !errors.As(err, &ue) {
		t.Fatalf("second load-test call: %v, want a *limiter.BlockError inside a *url.Error", err)
	}
	if be.Rule != "lt-out" || be.Class != "loadtest" || be.RetryAfter <= 0 {
		t.Fatalf("block error %+v", be)
	}
	for range 5 {
		if err := do(context.Background()); err != nil {
			t.Fatalf("production call refused: %v", err)
		}
	}
	if got := hits.Load(); got != 6 {
		t.Fatalf("server saw %d requests, want 6 (the refused one must not be sent)", got)
	}
}

func TestTransportBreaker(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "cb", Resource: "http:*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorRatio, Threshold: 0.5, MinRequests: 3, OpenFor: 3600e9}}}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: httplimit.Transport(l, nil)}
	var statuses []int
	var blocked int
	for range 6 {
		resp, err := client.Get(srv.URL)
		if errors.Is(err, limiter.ErrCircuitOpen) {
			blocked++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if len(statuses) != 3 || blocked != 3 {
		t.Fatalf("statuses %v, %d blocked: want 3 failures then an open breaker", statuses, blocked)
	}
}
