package slgrpc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/propagation"
)

// mdHealth records the mark and the incoming metadata its handler sees,
// counts calls, and (as a gRPC proxy does) can forward its incoming
// metadata to a downstream.
type mdHealth struct {
	healthpb.UnimplementedHealthServer
	mu      sync.Mutex
	calls   atomic.Int64
	mark    propagation.Mark
	md      metadata.MD
	next    healthpb.HealthClient
	forward bool // copy incoming metadata to the outgoing call
	inject  metadata.MD
}

func (h *mdHealth) seen(ctx context.Context) {
	h.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	h.mu.Lock()
	h.mark, h.md = propagation.FromContext(ctx), md
	h.mu.Unlock()
}

func (h *mdHealth) last() (propagation.Mark, metadata.MD) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mark, h.md
}

func (h *mdHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.seen(ctx)
	if h.next != nil {
		out := ctx
		if h.forward {
			md, _ := metadata.FromIncomingContext(ctx)
			out = metadata.NewOutgoingContext(ctx, md.Copy())
		}
		if h.inject != nil {
			out = metadata.NewOutgoingContext(ctx, h.inject)
		}
		if _, err := h.next.Check(out, &healthpb.HealthCheckRequest{}); err != nil {
			return nil, err
		}
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (h *mdHealth) Watch(_ *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	h.seen(s.Context())
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

func serveMD(t *testing.T, h *mdHealth, opts ...slgrpc.Option) string {
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

// mdCarriers lists the mark carriers left in md.
func mdCarriers(md metadata.MD) []string {
	var out []string
	for k, v := range md {
		switch strings.TrimPrefix(strings.ToLower(k), "grpc-metadata-") {
		case "x-shadowlane-run", "x-shadowlane-env", "x-shadowlane-token":
			out = append(out, k)
		case "baggage":
			for _, line := range v {
				if strings.Contains(line, "shadowlane.") {
					out = append(out, k+": "+line)
				}
			}
		}
	}
	return out
}

// Items 2, 4 and 6 over gRPC: an edge refuses unverifiable marks with
// PermissionDenied and takes a token alone; a gRPC proxy that forwards its
// incoming metadata to an internal server never passes a forged mark on —
// the edge entry strips every carrier from what the handler sees, and the
// client interceptor strips carriers from unmarked calls.
func TestGRPCProxyForwardsNoForgedMark(t *testing.T) {
	edgeRT, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer edgeRT.Close()
	stripRT, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{OnUntrusted: "strip", Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}})
	defer stripRT.Close()
	down := &mdHealth{}
	downAddr := serveMD(t, down, slgrpc.WithRuntime(internalRT(t)))

	proxy := func(rt *shadowlane.Runtime) (*mdHealth, healthpb.HealthClient) {
		up := &mdHealth{next: dial(t, downAddr, slgrpc.WithRuntime(rt)), forward: true}
		addr := serveMD(t, up, slgrpc.WithRuntime(rt), slgrpc.Edge())
		return up, healthpb.NewHealthClient(mustConn(t, addr)) // outside callers: raw metadata
	}
	upReject, clientReject := proxy(edgeRT)
	upStrip, clientStrip := proxy(stripRT)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, _ := edgeRT.Keyring().Sign("r1", "proj-a", time.Now().Add(time.Hour))
	expired, _ := edgeRT.Keyring().Sign("r1", "", time.Now().Add(-time.Second))

	call := func(c healthpb.HealthClient, kv ...string) error {
		_, err := c.Check(metadata.AppendToOutgoingContext(ctx, kv...), &healthpb.HealthCheckRequest{})
		return err
	}
	// token only: load-test with the token's run and env, at both hops
	if err := call(clientReject, "x-shadowlane-token", tok); err != nil {
		t.Fatal(err)
	}
	want := propagation.Mark{Run: "r1", Env: "proj-a"}
	if m, md := upReject.last(); m != want || len(mdCarriers(md)) > 0 {
		t.Errorf("token only at the edge: %v, handler sees carriers %v", m, mdCarriers(md))
	}
	if m, _ := down.last(); m != want {
		t.Errorf("token only downstream: %v", m)
	}
	forged := [][]string{
		{"x-shadowlane-run", "evil"},
		{"x-shadowlane-run", "r1", "x-shadowlane-token", expired},
		{"baggage", "a=1", "baggage", "shadowlane.run=evil"},
		{"grpc-metadata-x-shadowlane-run", "evil"},
		{"x-shadowlane-run", "r1", "x-shadowlane-run", "evil", "x-shadowlane-token", tok},
	}
	for _, kv := range forged {
		n := upReject.calls.Load()
		if err := call(clientReject, kv...); status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "untrusted") {
			t.Errorf("%v: %v, want PermissionDenied", kv, err)
		}
		if upReject.calls.Load() != n {
			t.Errorf("%v: refused call reached the handler", kv)
		}
		// strip (explicit): the call goes on as production, and nothing
		// forged reaches the internal server behind the forwarding proxy
		if err := call(clientStrip, append(kv, "x-app", "kept")...); err != nil {
			t.Fatalf("strip %v: %v", kv, err)
		}
		if m, md := upStrip.last(); !m.IsZero() || len(mdCarriers(md)) > 0 || md.Get("x-app")[0] != "kept" {
			t.Errorf("strip %v: edge handler saw %v, carriers %v", kv, m, mdCarriers(md))
		}
		if m, md := down.last(); !m.IsZero() || len(mdCarriers(md)) > 0 {
			t.Errorf("strip %v: internal server saw %v, carriers %v", kv, m, mdCarriers(md))
		}
	}
	// streams are refused / stripped the same way
	st, err := clientReject.Watch(metadata.AppendToOutgoingContext(ctx, "x-shadowlane-run", "evil"), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("forged stream: %v", err)
	}
	st, err = clientStrip.Watch(metadata.AppendToOutgoingContext(ctx, "baggage", "a=1,shadowlane.run=evil"), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	if m, md := upStrip.last(); !m.IsZero() || len(mdCarriers(md)) > 0 || md.Get("baggage")[0] != "a=1" {
		t.Errorf("stripped stream: %v %v", m, md)
	}
}

// Item 6: the client interceptor removes mark carriers from the outgoing
// metadata of an unmarked call, whoever put them there; a marked call sends
// its own mark only.
func TestClientStripsUnmarkedCarriers(t *testing.T) {
	rt := internalRT(t)
	down := &mdHealth{}
	downAddr := serveMD(t, down, slgrpc.WithRuntime(rt))
	up := &mdHealth{next: dial(t, downAddr, slgrpc.WithRuntime(rt)),
		inject: metadata.MD{"x-shadowlane-run": {"evil"}, "baggage": {"a=1", "shadowlane.run=evil"}, "grpc-metadata-x-shadowlane-env": {"proj-x"}, "x-app": {"kept"}}}
	upAddr := serveMD(t, up, slgrpc.WithRuntime(rt))
	c := healthpb.NewHealthClient(mustConn(t, upAddr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	m, md := down.last()
	if !m.IsZero() || len(mdCarriers(md)) > 0 || md.Get("x-app")[0] != "kept" || md.Get("baggage")[0] != "a=1" {
		t.Fatalf("unmarked call forwarded %v, carriers %v (md %v)", m, mdCarriers(md), md)
	}
	// marked call (the internal runtime has no allow-list entry needed: set one)
	rt2, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}})
	defer rt2.Close()
	up2 := &mdHealth{next: dial(t, downAddr, slgrpc.WithRuntime(rt2)), inject: up.inject}
	c2 := healthpb.NewHealthClient(mustConn(t, serveMD(t, up2, slgrpc.WithRuntime(rt2))))
	if _, err := c2.Check(metadata.AppendToOutgoingContext(ctx, "x-shadowlane-run", "r7"), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := down.last(); m != (propagation.Mark{Run: "r7"}) {
		t.Fatalf("marked call: %v", m)
	}
	// what goes on the wire, read by a server without shadowlane
	plain := &mdHealth{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ps := grpc.NewServer()
	healthpb.RegisterHealthServer(ps, plain)
	go ps.Serve(ln)
	defer ps.Stop()
	for _, tc := range []struct {
		rt   *shadowlane.Runtime
		ctx  context.Context
		want map[string]string
	}{
		{rt, ctx, map[string]string{"baggage": "a=1", "x-app": "kept"}},
		{rt2, propagation.With(ctx, propagation.Mark{Run: "r7"}), map[string]string{"x-shadowlane-run": "r7", "baggage": "a=1,shadowlane.run=r7", "x-app": "kept"}},
	} {
		c := dial(t, ln.Addr().String(), slgrpc.WithRuntime(tc.rt))
		if _, err := c.Check(metadata.NewOutgoingContext(tc.ctx, up.inject.Copy()), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		_, md := plain.last()
		for k, v := range tc.want {
			if got := strings.Join(md.Get(k), "|"); got != v {
				t.Errorf("%v: wire %s = %q, want %q (md %v)", propagation.FromContext(tc.ctx), k, got, v, md)
			}
		}
		if len(md.Get("grpc-metadata-x-shadowlane-env")) != 0 || (tc.want["x-shadowlane-run"] == "" && len(md.Get("x-shadowlane-run")) != 0) {
			t.Errorf("stale carriers on the wire: %v", md)
		}
	}
}

// Item 13: the outbound allow-list and mocks apply to gRPC clients, by the
// target's authority, for unary and streaming calls. Production calls are
// never affected.
func TestGRPCOutboundAllowAndMocks(t *testing.T) {
	srv := &mdHealth{}
	addr := serveMD(t, srv, slgrpc.WithRuntime(internalRT(t)))
	_, port, _ := net.SplitHostPort(addr)
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"orders"}, Mocks: []shadowlane.MockConfig{
			{Host: "localhost", GRPCMethod: "/grpc.health.v1.Health/Check", Body: `{"status":"NOT_SERVING"}`},
			{Host: "localhost", GRPCMethod: "/grpc.health.v1.Health/Watch", Body: `{"status":"SERVICE_UNKNOWN"}`},
			{Host: "127.0.0.2", GRPCMethod: "/grpc.health.v1.*", GRPCCode: int(codes.Unavailable), Body: "mocked outage"},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	conn := func(target string) healthpb.HealthClient {
		t.Helper()
		cc, err := grpc.NewClient(target, append(slgrpc.DialOptions(slgrpc.WithRuntime(rt)), grpc.WithTransportCredentials(insecureCreds()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return healthpb.NewHealthClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lt := propagation.With(ctx, propagation.Mark{Run: "r1"})
	blocked := conn("dns:///127.0.0.1:" + port) // not on the allow-list
	n := srv.calls.Load()
	_, err = blocked.Check(lt, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "outbound.allow") {
		t.Fatalf("blocked unary: %v", err)
	}
	ws, err := blocked.Watch(lt, &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = ws.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("blocked stream: %v", err)
	}
	if srv.calls.Load() != n {
		t.Fatal("a blocked load-test call reached the server")
	}
	if s := rt.Stats().Outbound["block|127.0.0.1:"+port]; s != 2 {
		t.Errorf("blocked calls counted %d: %v", s, rt.Stats().Outbound)
	}
	// production through the same connection reaches the server
	if _, err := blocked.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || srv.calls.Load() != n+1 {
		t.Fatalf("production: %v", err)
	}
	// mocks: unary answered from JSON, a stream gets one message then EOF
	mocked := conn("localhost:" + port)
	resp, err := mocked.Check(lt, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("mocked unary: %v %v", resp, err)
	}
	ws, err = mocked.Watch(lt, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		t.Fatalf("mocked stream: %v %v", r, err)
	}
	if _, err := ws.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("mocked stream end: %v", err)
	}
	_, err = conn("passthrough:///127.0.0.2:"+port).Check(lt, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "mocked outage" {
		t.Fatalf("mocked status: %v", err)
	}
	if srv.calls.Load() != n+1 {
		t.Fatal("a mocked load-test call reached the server")
	}
	// invalid gRPC mocks are refused at load
	bad := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}, Outbound: shadowlane.OutboundConfig{Mocks: []shadowlane.MockConfig{
		{Host: "pay", GRPCMethod: "Charge"}, {Host: "pay", GRPCMethod: "/p.P/C", GRPCCode: 99}, {Host: "pay", GRPCMethod: "/p.P/C", Status: 200}}}}
	err = bad.Validate()
	for _, f := range []string{"outbound.mocks[0].grpcMethod", "outbound.mocks[1].grpcCode", "outbound.mocks[2]"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("bad gRPC mock: %v does not name %s", err, f)
		}
	}
}

func TestGRPCAuthority(t *testing.T) {
	for in, want := range map[string]string{
		"dns:///pay.example.com:443":        "pay.example.com:443",
		"dns://8.8.8.8/pay.example.com:443": "pay.example.com:443",
		"passthrough:///10.0.0.5:50051":     "10.0.0.5:50051",
		"orders:9000":                       "orders:9000",
		"drill:///orders":                   "orders",
		"unix:///run/s.sock":                "/run/s.sock",
	} {
		if got := shadowlane.GRPCAuthority(in); got != want {
			t.Errorf("GRPCAuthority(%q) = %q, want %q", in, got, want)
		}
	}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
