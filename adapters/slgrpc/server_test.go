package slgrpc_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/internal/edge"
	"github.com/shadowlane/shadowlane/propagation"
)

func internalRT(t testing.TB) *shadowlane.Runtime {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// serverModes are the ways a server can install the interceptors: the
// documented one-liner, the interceptors alone, and the interceptors on the
// ValueFromIncomingContext path (a grpc-go whose metadata key is unknown).
var serverModes = []struct {
	name string
	opts func(...slgrpc.Option) []grpc.ServerOption
}{
	{"ServerOptions", slgrpc.ServerOptions},
	{"standalone", func(o ...slgrpc.Option) []grpc.ServerOption {
		return []grpc.ServerOption{
			grpc.UnaryInterceptor(slgrpc.UnaryServerInterceptor(o...)),
			grpc.StreamInterceptor(slgrpc.StreamServerInterceptor(o...)),
		}
	}},
	{"lookup", func(o ...slgrpc.Option) []grpc.ServerOption {
		u, s := slgrpc.LookupServerInterceptors(o...)
		return []grpc.ServerOption{grpc.ChainUnaryInterceptor(u), grpc.ChainStreamInterceptor(s)}
	}},
}

func TestIncomingKeyLearned(t *testing.T) {
	if !slgrpc.IncomingKeyLearned() {
		t.Fatal("server interceptors are on the slow look-up path with this grpc-go")
	}
}

// A real server on loopback, called by a client without shadowlane (raw
// metadata): marks in headers or in baggage are admitted on unary and
// stream calls, production calls stay unmarked, the kill switch refuses
// marked calls only.
func TestServerAdmitsMarks(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			rt := internalRT(t)
			h := &health{}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := grpc.NewServer(mode.opts(slgrpc.WithRuntime(rt))...)
			healthpb.RegisterHealthServer(s, h)
			go s.Serve(ln)
			t.Cleanup(s.Stop)
			client := healthpb.NewHealthClient(mustConn(t, ln.Addr().String()))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			full := propagation.Mark{Run: "r1", Env: "proj-a"}
			for _, tc := range []struct {
				name string
				kv   []string
				want propagation.Mark
			}{
				{"unmarked", nil, propagation.Mark{}},
				{"app-baggage", []string{"baggage", "userId=alice,tenant=t1"}, propagation.Mark{}},
				{"other-headers", []string{"x-request-id", "abc", "x-shadowlane-runs", "r1"}, propagation.Mark{}},
				{"header", []string{"x-shadowlane-run", "r1", "x-shadowlane-env", "proj-a"}, full},
				{"header-run-only", []string{"x-shadowlane-run", "r1"}, propagation.Mark{Run: "r1"}},
				{"header-mixed-case", []string{"X-Shadowlane-Run", "r1", "X-SHADOWLANE-ENV", "proj-a"}, full}, // gRPC lowercases on the wire
				{"baggage", []string{"baggage", "userId=alice,shadowlane.run=r1,shadowlane.env=proj-a"}, full},
				{"baggage-among-others", []string{"x-request-id", "abc", "baggage", "shadowlane.run=r1"}, propagation.Mark{Run: "r1"}},
			} {
				if _, err := client.Check(metadata.AppendToOutgoingContext(ctx, tc.kv...), &healthpb.HealthCheckRequest{}); err != nil {
					t.Fatalf("unary %s: %v", tc.name, err)
				}
				if got := h.Last(); got != tc.want {
					t.Errorf("unary %s: mark %v, want %v", tc.name, got, tc.want)
				}
				st, err := client.Watch(metadata.AppendToOutgoingContext(ctx, tc.kv...), &healthpb.HealthCheckRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := st.Recv(); err != nil {
					t.Fatalf("stream %s: %v", tc.name, err)
				}
				if got := h.Last(); got != tc.want {
					t.Errorf("stream %s: mark %v, want %v", tc.name, got, tc.want)
				}
			}

			rt.SetLoadTest(false, "incident")
			for _, kv := range [][]string{{"x-shadowlane-run", "r1"}, {"baggage", "shadowlane.run=r1"}} {
				_, err := client.Check(metadata.AppendToOutgoingContext(ctx, kv...), &healthpb.HealthCheckRequest{})
				if status.Code(err) != codes.Unavailable {
					t.Errorf("unary %v under kill switch: %v", kv, err)
				}
				st, err := client.Watch(metadata.AppendToOutgoingContext(ctx, kv...), &healthpb.HealthCheckRequest{})
				if err == nil {
					_, err = st.Recv()
				}
				if status.Code(err) != codes.Unavailable {
					t.Errorf("stream %v under kill switch: %v", kv, err)
				}
			}
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Errorf("production under kill switch: %v", err)
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *fakeStream) Context() context.Context { return s.ctx }

// Metadata built in process (tests, other interceptors) may hold keys in
// any case; they are matched as metadata.ValueFromIncomingContext matches
// them, Unicode case folding included.
func TestInterceptorsFoldKeyCase(t *testing.T) {
	rt := internalRT(t)
	lu, ls := slgrpc.LookupServerInterceptors(slgrpc.WithRuntime(rt))
	unaries := map[string]grpc.UnaryServerInterceptor{"fast": slgrpc.UnaryServerInterceptor(slgrpc.WithRuntime(rt)), "lookup": lu}
	streams := map[string]grpc.StreamServerInterceptor{"fast": slgrpc.StreamServerInterceptor(slgrpc.WithRuntime(rt)), "lookup": ls}
	for _, tc := range []struct {
		md   metadata.MD
		want propagation.Mark
	}{
		{metadata.MD{"X-Shadowlane-Run": {"r1"}}, propagation.Mark{Run: "r1"}},
		{metadata.MD{"content-type": {"application/grpc"}, "X-SHADOWLANE-ENV": {"proj-a"}, "x-shadowlane-run": {"r1"}}, propagation.Mark{Run: "r1", Env: "proj-a"}},
		{metadata.MD{"x-\u017fhadowlane-run": {"r1"}}, propagation.Mark{Run: "r1"}}, // long s folds to s
		{metadata.MD{"Baggage": {"shadowlane.run=r1"}}, propagation.Mark{Run: "r1"}},
		{metadata.MD{"BAGGAGE": {"userId=alice"}, "User-Agent": {"x"}}, propagation.Mark{}},
		{metadata.MD{"X-Shadowlane-Runs": {"r1"}, "Baggages": {"shadowlane.run=r1"}}, propagation.Mark{}},
		{metadata.MD{}, propagation.Mark{}},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), tc.md)
		ctx = context.WithValue(ctx, otherKey{}, 1) // the MD is not the top value in a server's context
		for name, in := range unaries {
			var got propagation.Mark
			if _, err := in(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/x/y"}, func(ctx context.Context, _ any) (any, error) {
				got = propagation.FromContext(ctx)
				return nil, nil
			}); err != nil || got != tc.want {
				t.Errorf("unary %s %q: %v %v, want %v", name, slgrpc.MD(tc.md).Keys(), got, err, tc.want)
			}
		}
		for name, in := range streams {
			var got propagation.Mark
			if err := in(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: "/x/y"}, func(_ any, ss grpc.ServerStream) error {
				got = propagation.FromContext(ss.Context())
				return nil
			}); err != nil || got != tc.want {
				t.Errorf("stream %s %q: %v %v, want %v", name, slgrpc.MD(tc.md).Keys(), got, err, tc.want)
			}
		}
	}
}

// Production calls cost no allocation, whatever other metadata they carry
// and however the interceptors are installed.
func TestServerInterceptorsUnmarkedAllocs(t *testing.T) {
	rt := internalRT(t)
	serverMD := metadata.MD{":authority": {"orders"}, "content-type": {"application/grpc"}, "user-agent": {"grpc-go/1.85.0"}, "grpc-accept-encoding": {"gzip"}}
	withBaggage := metadata.Join(serverMD, metadata.MD{"baggage": {"userId=alice,tenant=t1"}})
	lu, ls := slgrpc.LookupServerInterceptors(slgrpc.WithRuntime(rt))
	unary := slgrpc.UnaryServerInterceptor(slgrpc.WithRuntime(rt))
	stream := slgrpc.StreamServerInterceptor(slgrpc.WithRuntime(rt))
	uh := func(ctx context.Context, req any) (any, error) { return nil, nil }
	sh := func(any, grpc.ServerStream) error { return nil }
	ui := &grpc.UnaryServerInfo{FullMethod: "/x/y"}
	si := &grpc.StreamServerInfo{FullMethod: "/x/y"}
	for _, tc := range []struct {
		name string
		md   metadata.MD
		u    grpc.UnaryServerInterceptor
		s    grpc.StreamServerInterceptor
	}{
		{"fast", serverMD, unary, stream},
		{"fast/app-baggage", withBaggage, unary, stream},
		{"lookup", serverMD, lu, ls},
	} {
		ctx := context.WithValue(metadata.NewIncomingContext(context.Background(), tc.md), otherKey{}, 1)
		ss := &fakeStream{ctx: ctx}
		if n := testing.AllocsPerRun(200, func() { tc.u(ctx, nil, ui, uh) }); n != 0 {
			t.Errorf("%s: unmarked unary interceptor allocates %v", tc.name, n)
		}
		if n := testing.AllocsPerRun(200, func() { tc.s(nil, ss, si, sh) }); n != 0 {
			t.Errorf("%s: unmarked stream interceptor allocates %v", tc.name, n)
		}
	}
	if n := testing.AllocsPerRun(200, func() { unary(context.Background(), nil, ui, uh) }); n != 0 {
		t.Errorf("no metadata: unary interceptor allocates %v", n)
	}
}

// At an edge with routing.tagSource's header configured, a production call
// carrying only that header (no mark keys) gets its environment tag on
// every server install mode, fast path included; a malformed tag leaves it
// untagged.
func TestServerEdgeTagHeader(t *testing.T) {
	for _, mode := range serverModes {
		t.Run(mode.name, func(t *testing.T) {
			rt, err := shadowlane.New(shadowlane.Config{
				Trust:   shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}},
				Routing: shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Header: "X-Env-Tag"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rt.Close() })
			if got := edge.TagHeader.(func(*shadowlane.Runtime) string)(rt); got != "x-env-tag" {
				t.Fatalf("edge.TagHeader = %q", got)
			}
			h := &health{}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := grpc.NewServer(mode.opts(slgrpc.WithRuntime(rt), slgrpc.Edge())...)
			healthpb.RegisterHealthServer(s, h)
			go s.Serve(ln)
			t.Cleanup(s.Stop)
			client := healthpb.NewHealthClient(mustConn(t, ln.Addr().String()))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, tc := range []struct {
				kv   []string
				want propagation.Mark
			}{
				{[]string{"x-env-tag", "proj-a"}, propagation.Mark{Env: "proj-a"}},
				{[]string{"x-env-tag", "bad tag!"}, propagation.Mark{}},
				{nil, propagation.Mark{}},
			} {
				cctx := metadata.NewOutgoingContext(ctx, metadata.Pairs(tc.kv...))
				if _, err := client.Check(cctx, &healthpb.HealthCheckRequest{}); err != nil {
					t.Fatalf("%v: %v", tc.kv, err)
				}
				if got := h.Last(); got != tc.want {
					t.Errorf("%v: handler saw %q, want %q", tc.kv, got.String(), tc.want.String())
				}
			}
		})
	}
}

// otherKey is an unrelated context key put above the incoming metadata.
type otherKey struct{}
