package slgrpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/limiter"
)

var zero time.Time

func serveLimited(t *testing.T, h *health, l *limiter.Limiter, opts ...slgrpc.Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(slgrpc.UnaryServerInterceptor(opts...), slgrpc.UnaryServerLimit(slgrpc.WithLimiter(l))),
		grpc.ChainStreamInterceptor(slgrpc.StreamServerInterceptor(opts...), slgrpc.StreamServerLimit(slgrpc.WithLimiter(l))),
	)
	healthpb.RegisterHealthServer(s, h)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestServerLimitLoadTestBudget(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "health-lt", Resource: "/grpc.health.v1.Health/*", Class: limiter.ClassLoadTest, QPS: 0.1, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	addr := serveLimited(t, &health{}, l, slgrpc.Internal())
	c := healthpb.NewHealthClient(mustConn(t, addr)) // a peer sending raw mark metadata
	lt := metadata.AppendToOutgoingContext(context.Background(), "x-shadowlane-run", "drill-1")
	if _, err := c.Check(lt, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Check(lt, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second load-test call: %v, want ResourceExhausted", err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "health-lt") || !strings.Contains(msg, "retry after") {
		t.Fatalf("message %q lacks the rule and the retry hint", msg)
	}
	// A pattern rule gives each matching resource its own bucket: Watch
	// gets its own one call.
	ws, err := c.Watch(lt, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatalf("first stream: %v", err)
	}
	ws, _ = c.Watch(lt, &healthpb.HealthCheckRequest{})
	if _, err := ws.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second load-test stream: %v, want ResourceExhausted", err)
	}
	for range 5 {
		if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("production call refused: %v", err)
		}
	}
	st := l.Resource("/grpc.health.v1.Health/Check").Stats()
	if p, lt := st.Classes[0].Sum(zero), st.Classes[1].Sum(zero); p.Pass != 5 || lt.Pass != 1 || lt.Blocked.QPS != 1 {
		t.Fatalf("stats production %+v load-test %+v", p, lt)
	}
}

func TestClientLimitTypedError(t *testing.T) {
	h := &health{}
	addr := serve(t, h, slgrpc.Internal())
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "out", Resource: "/grpc.health.v1.Health/Check", Concurrency: 1}}); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(slgrpc.UnaryClientLimit(slgrpc.WithLimiter(l))),
		grpc.WithChainStreamInterceptor(slgrpc.StreamClientLimit(slgrpc.WithLimiter(l))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	// Hold the only slot with an admission of our own, then call.
	tok, err := l.Resource("/grpc.health.v1.Health/Check").Entry(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(context.Background(), &healthpb.HealthCheckRequest{})
	var be *limiter.BlockError
	if !errors.As(err, &be) || be.Reason != limiter.ReasonConcurrency || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("blocked call: %v (code %v), want a *limiter.BlockError with ResourceExhausted", err, status.Code(err))
	}
	tok.Exit()
	if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("after release: %v", err)
	}
	// Streams hold their slot until they end.
	if err := l.SetRules([]limiter.Rule{{Name: "w", Resource: "/grpc.health.v1.Health/Watch", Concurrency: 1}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ws, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{}); !errors.Is(err, limiter.ErrBlocked) {
		t.Fatalf("second stream while the first is open: %v", err)
	}
	if _, err := ws.Recv(); err == nil { // server returned after one message: io.EOF ends it
		t.Fatal("want end of stream")
	}
	cancel()
	ws2, err := c.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("stream after the first ended: %v", err)
	}
	ws2.Recv()
}

func TestLimitFromRuntimeConfig(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Limits: shadowlane.LimitsConfig{Rules: []shadowlane.LimitRuleConfig{
		{Name: "check", Resource: "/grpc.health.v1.Health/Check", QPS: 0.1, Burst: 2},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(slgrpc.UnaryServerLimit(slgrpc.WithRuntime(rt))))
	healthpb.RegisterHealthServer(s, &health{})
	go s.Serve(ln)
	defer s.Stop()
	c := dial(t, ln.Addr().String())
	var codesSeen []codes.Code
	for range 3 {
		_, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{})
		codesSeen = append(codesSeen, status.Code(err))
	}
	if codesSeen[0] != codes.OK || codesSeen[1] != codes.OK || codesSeen[2] != codes.ResourceExhausted {
		t.Fatalf("codes %v, want OK OK ResourceExhausted", codesSeen)
	}
}

func TestServerLimitPerCallerMetadata(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Name: "per-caller", Resource: "/grpc.health.v1.Health/Check", QPS: 0.1, Burst: 1,
		Param: &limiter.ParamRule{Key: "metadata:x-caller"}}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, serveLimited(t, &health{}, l, slgrpc.Internal()))
	call := func(caller string) codes.Code {
		ctx := context.Background()
		if caller != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-caller", caller)
		}
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		return status.Code(err)
	}
	got := []codes.Code{call("a"), call("a"), call("b"), call(""), call("")}
	want := []codes.Code{codes.OK, codes.ResourceExhausted, codes.OK, codes.OK, codes.OK}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("codes %v, want %v", got, want)
		}
	}
}

func ExampleUnaryServerLimit() {
	l := limiter.New()
	_ = l.SetRules([]limiter.Rule{{Resource: "/grpc.health.v1.Health/*", QPS: 100, Concurrency: 10}})
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(slgrpc.UnaryServerInterceptor(), slgrpc.UnaryServerLimit(slgrpc.WithLimiter(l))),
		grpc.ChainStreamInterceptor(slgrpc.StreamServerInterceptor(), slgrpc.StreamServerLimit(slgrpc.WithLimiter(l))),
	)
	defer s.Stop()

	err := slgrpc.BlockedError{BlockError: &limiter.BlockError{Resource: "/pkg.Svc/M", Rule: "r", Reason: limiter.ReasonQPS, Limit: 100, Value: 101, Class: "loadtest", RetryAfter: time.Second}}
	fmt.Println(status.Code(err), errors.Is(err, limiter.ErrBlocked))
	// Output:
	// ResourceExhausted true
}
