package envbalancer_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver/manual"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// serve starts a gRPC health server on loopback that answers with its name
// in the "served-by" header.
func serve(name string) (addr string, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("served-by", name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(lis)
	return lis.Addr().String(), s.Stop
}

// Calls tagged "proj-a" go to the proj-a instance; untagged calls and tags
// without an instance go to trunk.
func Example() {
	trunkAddr, stopTrunk := serve("trunk")
	defer stopTrunk()
	projAddr, stopProj := serve("proj-a")
	defer stopProj()

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "gateway"}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	// A static set of labelled endpoints for a balancer that follows rt's
	// routing and counts its picks there; envbalancer.NewResolver(reg, "",
	// envbalancer.WithRuntime(rt)) does the same from a registry.
	r := manual.NewBuilderWithScheme("static")
	r.InitialState(envbalancer.State(rt,
		envtag.Endpoint{Addr: trunkAddr},
		envtag.Endpoint{Addr: projAddr, Env: "proj-a"}))
	conn, err := grpc.NewClient("static:///orders", grpc.WithResolvers(r),
		envbalancer.DialOption(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	whoServes := func(tag string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = propagation.With(ctx, propagation.Mark{Env: tag})
		var md metadata.MD
		// Wait for proj-a to be connected: before that, a proj-a call
		// would fall back to trunk.
		for {
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md), grpc.WaitForReady(true)); err != nil {
				return err.Error()
			}
			if tag != "proj-a" || md.Get("served-by")[0] == "proj-a" {
				return md.Get("served-by")[0]
			}
		}
	}
	fmt.Println("untagged ->", whoServes(""))
	fmt.Println("proj-a   ->", whoServes("proj-a"))
	fmt.Println("proj-b   ->", whoServes("proj-b"))
	picks := rt.RoutingStats().Lookup("orders", "production")
	fmt.Println("counted in rt:", picks.Lane > 0 && picks.Trunk > 0)
	// Output:
	// untagged -> trunk
	// proj-a   -> proj-a
	// proj-b   -> trunk
	// counted in rt: true
}
