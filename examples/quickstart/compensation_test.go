package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/shadowlane/shadowlane"
)

// A request whose client gives up while the gateway waits for the order
// service still gives its stock back: the compensation does not run on
// the cancelled request context. The order service here is a listener
// that never answers, so the gateway's call hangs until the request is
// cancelled.
func TestRestockOutlivesCancelledRequest(t *testing.T) {
	t.Setenv("SHADOWLANE_QS_KEY", "restock-test-key-0123456789abcdef0123456789")
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	const key = StockKey + "sku-1"
	mr.Set(key, "10")
	hole, err := net.Listen("tcp", "127.0.0.1:0") // the kernel accepts; nobody speaks gRPC
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app, err := Start(ctx, Options{
		Service: "gateway", Redis: mr.Addr(), GatewayConfig: "gateway.yaml", OrdersAddr: hole.Addr().String(),
		HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		Edit: func(_ string, c *shadowlane.Config) { c.Admin.Addr = "127.0.0.1:0" },
		Log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	reqCtx, give := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(reqCtx, "POST", "http://"+app.HTTPAddr+"/orders", strings.NewReader(`{"sku":"sku-1","qty":1}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// The stock is taken: the gateway is now calling the order service.
	waitFor(t, ctx, func() bool { v, _ := mr.Get(key); return v == "9" }, "the request to take its stock")
	give() // the client gives up
	if err := <-done; err == nil {
		t.Fatal("the request was answered by an order service that never answers")
	}
	waitFor(t, ctx, func() bool { v, _ := mr.Get(key); return v == "10" }, "the stock to come back after the client gave up")
	if keys := mr.Keys(); len(keys) != 1 {
		t.Fatalf("keys %q: want only %s", keys, key)
	}
}

// waitFor polls cond until it holds; it fails the test after a minute
// (a bound for a stalled machine, not a timing assertion).
func waitFor(t *testing.T, ctx context.Context, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
