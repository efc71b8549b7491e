package slgrpc_test

import (
	"context"
	"net"
	"sync"
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
	"github.com/shadowlane/shadowlane/propagation"
)

const secret = "0123456789abcdef0123456789abcdef"

// health is a test service: Check records the mark and optionally calls a
// downstream; Watch (a stream) records the mark of the stream context.
type health struct {
	healthpb.UnimplementedHealthServer
	mu   sync.Mutex
	last propagation.Mark
	next healthpb.HealthClient
}

func (h *health) record(ctx context.Context) {
	h.mu.Lock()
	h.last = propagation.FromContext(ctx)
	h.mu.Unlock()
}

func (h *health) Last() propagation.Mark {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *health) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.record(ctx)
	if h.next != nil {
		if _, err := h.next.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return nil, err
		}
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *health) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	h.record(s.Context())
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func serve(t *testing.T, h *health, opts ...slgrpc.Option) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(slgrpc.ServerOptions(opts...)...)
	healthpb.RegisterHealthServer(s, h)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, opts ...slgrpc.Option) healthpb.HealthClient {
	conn, err := grpc.NewClient(addr, append(slgrpc.DialOptions(opts...), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func TestGRPCChain(t *testing.T) {
	edge, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	internal, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	defer edge.Close()
	defer internal.Close()

	down := &health{}
	downAddr := serve(t, down, slgrpc.WithRuntime(internal))
	up := &health{next: dial(t, downAddr, slgrpc.WithRuntime(edge))}
	upAddr := serve(t, up, slgrpc.WithRuntime(edge), slgrpc.Edge())
	client := healthpb.NewHealthClient(mustConn(t, upAddr)) // an outside caller: raw metadata, no shadowlane

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, _ := edge.Keyring().Sign("r1", "", time.Now().Add(time.Hour))

	call := func(kv ...string) error {
		_, err := client.Check(metadata.AppendToOutgoingContext(ctx, kv...), &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(); err != nil || !up.Last().IsZero() || !down.Last().IsZero() {
		t.Fatalf("production: %v up=%v down=%v", err, up.Last(), down.Last())
	}
	want := propagation.Mark{Run: "r1", Env: "proj-a"}
	if err := call("x-shadowlane-run", "r1", "x-shadowlane-env", "proj-a", "x-shadowlane-token", tok); err != nil || up.Last() != want || down.Last() != want {
		t.Fatalf("signed: %v up=%v down=%v", err, up.Last(), down.Last())
	}
	if err := call("x-shadowlane-run", "r1"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("forged: %v up=%v down=%v", err, up.Last(), down.Last())
	}
	// baggage only (as an OpenTelemetry-only client would send it)
	if err := call("baggage", "shadowlane.run=r1,shadowlane.token="+tok); err != nil || up.Last().Run != "r1" || down.Last().Run != "r1" {
		t.Fatalf("baggage: %v up=%v down=%v", err, up.Last(), down.Last())
	}
	// streams
	st, err := client.Watch(metadata.AppendToOutgoingContext(ctx, "x-shadowlane-run", "r1", "x-shadowlane-token", tok), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil || up.Last().Run != "r1" {
		t.Fatalf("stream: %v %v", err, up.Last())
	}
	// kill switch downstream: Unavailable travels back, production unaffected
	internal.SetLoadTest(false, "incident")
	err = call("x-shadowlane-run", "r1", "x-shadowlane-token", tok)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("kill switch: %v", err)
	}
	if err := call(); err != nil {
		t.Fatalf("production under kill switch: %v", err)
	}
}

func mustConn(t *testing.T, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestUnaryInterceptorUnmarkedAllocs(t *testing.T) {
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	in := slgrpc.UnaryServerInterceptor(slgrpc.WithRuntime(rt))
	ctx := metadata.NewIncomingContext(context.Background(), metadata.MD{"content-type": {"application/grpc"}})
	handler := func(ctx context.Context, req any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/x/y"}
	if n := testing.AllocsPerRun(200, func() { in(ctx, nil, info, handler) }); n != 0 {
		t.Fatalf("unmarked unary interceptor allocates %v", n)
	}
}
