package slgrpc_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// counting is a health server that counts the calls that reach it.
type counting struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
}

func (c *counting) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	c.calls.Add(1)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (c *counting) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	c.calls.Add(1)
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func testDataConfig(action string) shadowlane.TestDataConfig {
	return shadowlane.TestDataConfig{
		Action:   action,
		Prefixes: []string{"lt-"},
		IDRanges: []shadowlane.IDRange{{Min: 9000000000, Max: 9099999999}},
		Headers:  []shadowlane.TestDataHeader{{Name: "X-Test", Value: "*"}},
	}
}

// TestLostMarkGuard: unmarked client calls whose outgoing metadata is
// load-test data (testData:) are refused before they leave the client, on
// a real loopback server that counts what reaches it; production calls and
// marked calls pass.
func TestLostMarkGuard(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{TestData: testDataConfig(""), Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}},
		shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	srv := &counting{}
	ln := listen(t)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, srv)
	go s.Serve(ln)
	defer s.Stop()
	client := dial(t, ln.Addr().String(), slgrpc.WithRuntime(rt))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost := [][]string{
		{"x-user", "lt-1"},
		{"x-test", "yes"},
		{"x-user-id", "9000000001"},
		{"x-other", "a", "x-email", "lt-9@shop.example"},
	}
	for _, kv := range lost {
		_, err := client.Check(metadata.AppendToOutgoingContext(ctx, kv...), &healthpb.HealthCheckRequest{})
		var le *slgrpc.LostMarkError
		if status.Code(err) != codes.PermissionDenied || !errors.Is(err, shadow.ErrLostMark) || !errors.As(err, &le) {
			t.Errorf("%q: err = %v, want PermissionDenied wrapping ErrLostMark", kv, err)
		}
	}
	if _, err := client.Watch(metadata.AppendToOutgoingContext(ctx, "x-user", "lt-2"), &healthpb.HealthCheckRequest{}); !errors.Is(err, shadow.ErrLostMark) {
		t.Errorf("stream: err = %v, want ErrLostMark", err)
	}
	if n := srv.calls.Load(); n != 0 {
		t.Fatalf("%d refused calls reached the server", n)
	}
	// production metadata, and a marked call with load-test data, pass
	if _, err := client.Check(metadata.AppendToOutgoingContext(ctx, "x-user", "u-1"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	mctx := propagation.With(metadata.AppendToOutgoingContext(ctx, "x-user", "lt-1"), propagation.Mark{Run: "r1"})
	if _, err := client.Check(mctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Fatalf("%d calls reached the server, want 2", n)
	}
	if got := rt.Stats().LostMarks["grpc"]; got != int64(len(lost))+1 {
		t.Fatalf("LostMarks = %v, want grpc %d", rt.Stats().LostMarks, len(lost)+1)
	}

	// action alert: the call goes through and is counted
	alert, err := shadowlane.New(shadowlane.Config{TestData: testDataConfig("alert")}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer alert.Close()
	ac := dial(t, ln.Addr().String(), slgrpc.WithRuntime(alert))
	if _, err := ac.Check(metadata.AppendToOutgoingContext(ctx, "x-user", "lt-3"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 3 || alert.Stats().LostMarks["grpc"] != 1 {
		t.Fatalf("alert: %d calls, LostMarks %v", n, alert.Stats().LostMarks)
	}
}

// TestUnaryClientInterceptorUnmarkedAllocs: without testData the client
// interceptor allocates nothing on an unmarked call without outgoing
// metadata. (With outgoing metadata, reading it for stale mark carriers
// costs 3 allocations, guard or not: see the benchmark.)
func TestUnaryClientInterceptorUnmarkedAllocs(t *testing.T) {
	rt, _ := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	defer rt.Close()
	in := slgrpc.UnaryClientInterceptor(slgrpc.WithRuntime(rt))
	ctx := context.Background()
	cc := mustConn(t, "127.0.0.1:1")
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	if n := testing.AllocsPerRun(200, func() { in(ctx, "/x/y", nil, nil, cc, invoker) }); n != 0 {
		t.Fatalf("unmarked client interceptor allocates %v", n)
	}
}

// BenchmarkUnaryClientInterceptorUnmarked: the client interceptor on an
// unmarked call with outgoing metadata, without testData and with it.
func BenchmarkUnaryClientInterceptorUnmarked(b *testing.B) {
	for _, c := range []struct {
		name string
		td   shadowlane.TestDataConfig
	}{{"off", shadowlane.TestDataConfig{}}, {"on", testDataConfig("")}} {
		rt, _ := shadowlane.New(shadowlane.Config{TestData: c.td}, shadowlane.WithoutConfigFile())
		in := slgrpc.UnaryClientInterceptor(slgrpc.WithRuntime(rt))
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-user", "u-1", "x-request-id", "7f3a9c")
		conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			b.Fatal(err)
		}
		invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = in(ctx, "/x/y", nil, nil, conn, invoker)
			}
		})
		conn.Close()
		rt.Close()
	}
}
