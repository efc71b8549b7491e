package foundation

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	otelprop "go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/propagation"
)

func init() { gin.SetMode(gin.ReleaseMode) }

func runtimeFor(b *testing.B, mode string) *shadowlane.Runtime {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: mode,
		Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close() })
	return rt
}

func serve(b *testing.B, r *gin.Engine, req *http.Request) {
	w := httptest.NewRecorder()
	b.ReportAllocs()
	measure.GrowStack(8)
	for b.Loop() {
		measure.Op(func() { r.ServeHTTP(w, req) })
	}
}

func engine(mw ...gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	r.Use(mw...)
	r.GET("/orders/:id", func(c *gin.Context) { c.Status(200) })
	return r
}

func req(h map[string]string) *http.Request {
	r := httptest.NewRequest("GET", "/orders/42", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench")
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

func BenchmarkGin(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serve(b, engine(), req(nil)) })
	b.Run("bare-with-noop-middleware", func(b *testing.B) { serve(b, engine(func(c *gin.Context) { c.Next() }), req(nil)) })
	b.Run("shadowlane/unmarked", func(b *testing.B) {
		rt := runtimeFor(b, "internal")
		serve(b, engine(slgin.Middleware(slgin.WithRuntime(rt))), req(nil))
	})
	b.Run("shadowlane/unmarked-with-app-baggage", func(b *testing.B) {
		rt := runtimeFor(b, "internal")
		serve(b, engine(slgin.Middleware(slgin.WithRuntime(rt))), req(map[string]string{"Baggage": "userId=alice,tenant=t1"}))
	})
	b.Run("shadowlane/marked-header", func(b *testing.B) {
		rt := runtimeFor(b, "internal")
		serve(b, engine(slgin.Middleware(slgin.WithRuntime(rt))), req(map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Env": "proj-a"}))
	})
	b.Run("shadowlane/marked-baggage", func(b *testing.B) {
		rt := runtimeFor(b, "internal")
		serve(b, engine(slgin.Middleware(slgin.WithRuntime(rt))), req(map[string]string{"Baggage": "userId=alice,shadowlane.run=run-1,shadowlane.env=proj-a"}))
	})
	b.Run("shadowlane/marked-header-edge-token", func(b *testing.B) {
		rt := runtimeFor(b, "edge")
		tok, _ := rt.Keyring().Sign("run-1", "", time.Now().Add(time.Hour))
		serve(b, engine(slgin.Middleware(slgin.WithRuntime(rt))), req(map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Token": tok}))
	})
	b.Run("otelgin/baggage", func(b *testing.B) {
		props := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{})
		serve(b, engine(otelgin.Middleware("bench", otelgin.WithPropagators(props))), req(map[string]string{"Baggage": "userId=alice,shadowlane.run=run-1"}))
	})
}

// serverCtx puts md where a grpc-go server's handler context has it: under
// the values the server adds for each call (server, transport stream, RPC
// info).
func serverCtx(md metadata.MD) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), md)
	for i := 0; i < 3; i++ {
		ctx = context.WithValue(ctx, struct{ n int }{i}, i)
	}
	return ctx
}

// transportCtx returns the handler context of a real loopback call that
// carried md: its incoming metadata is the map grpc-go's HTTP/2 transport
// built, with the transport stream above it, as in production.
func transportCtx(b *testing.B, md metadata.MD) context.Context {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	got := make(chan context.Context, 1)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		got <- ctx
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	out := metadata.MD{}
	for k, v := range md {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" {
			out[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), out), 30*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		b.Fatal(err)
	}
	return <-got
}

// BenchmarkGRPCUnaryServer measures the unary server interceptor that
// slgrpc.ServerOptions installs, called directly (a loopback call costs tens
// of microseconds, which would bury the interceptor's cost).
func BenchmarkGRPCUnaryServer(b *testing.B) {
	handler := func(ctx context.Context, req any) (any, error) { return nil, nil }
	info := &grpc.UnaryServerInfo{FullMethod: "/shop.Orders/Place"}
	plain := metadata.NewIncomingContext(context.Background(), metadata.MD{"content-type": {"application/grpc"}, ":authority": {"orders"}, "user-agent": {"grpc-go"}})
	marked := metadata.NewIncomingContext(context.Background(), metadata.MD{"content-type": {"application/grpc"}, "x-shadowlane-run": {"run-1"}, "x-shadowlane-env": {"proj-a"}})
	server := metadata.MD{"content-type": {"application/grpc"}, ":authority": {"orders"}, "user-agent": {"grpc-go/1.85.0"}, "grpc-accept-encoding": {"gzip"}}
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		measure.GrowStack(8)
		for b.Loop() {
			measure.Op(func() { handler(plain, nil) })
		}
	})
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"shadowlane/unmarked", plain},
		{"shadowlane/unmarked-server-ctx", serverCtx(server)},
		{"shadowlane/unmarked-transport-ctx", transportCtx(b, server)},
		{"shadowlane/unmarked-with-app-baggage", serverCtx(metadata.Join(server, metadata.MD{"baggage": {"userId=alice,tenant=t1"}}))},
		{"shadowlane/marked", marked},
		{"shadowlane/marked-baggage", serverCtx(metadata.Join(server, metadata.MD{"baggage": {"userId=alice,shadowlane.run=run-1,shadowlane.env=proj-a"}}))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in := slgrpc.UnaryServerInterceptor(slgrpc.WithRuntime(runtimeFor(b, "internal")))
			b.ReportAllocs()
			measure.GrowStack(8)
			for b.Loop() {
				measure.Op(func() { in(tc.ctx, nil, info, handler) })
			}
		})
	}
}

func BenchmarkFromContext(b *testing.B) {
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	for i := 0; i < 5; i++ { // a realistic chain of values above the mark
		ctx = context.WithValue(ctx, struct{ n int }{i}, i)
	}
	b.ReportAllocs()
	var m propagation.Mark
	for b.Loop() {
		m = propagation.FromContext(ctx)
	}
	_ = m
}
