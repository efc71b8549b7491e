package slgrpc_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/propagation"
)

// An internal gRPC service and a client: the client's context mark reaches
// the server's handler. Load-test calls go only to authorities on
// outbound.allow (here the loopback server).
func Example() {
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()

	h := &health{}
	srv := grpc.NewServer(slgrpc.ServerOptions(slgrpc.WithRuntime(rt))...)
	healthpb.RegisterHealthServer(srv, h)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Stop()

	conn, _ := grpc.NewClient(ln.Addr().String(),
		append(slgrpc.DialOptions(slgrpc.WithRuntime(rt)), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	defer conn.Close()

	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-1", Env: "proj-a"})
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		panic(err)
	}
	fmt.Println(h.Last())
	// Output: run=run-1 env=proj-a
}
