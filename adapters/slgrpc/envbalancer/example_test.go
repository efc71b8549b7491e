package envbalancer_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

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

// A load-test run pinned to one zone (the single-room pressure test): the
// caller is in room-a, run "drill-7" is pinned to room-b. Production stays
// in room-a; the pinned run reaches only room-b, and is refused
// (Unavailable) once room-b is gone rather than spilled to room-a.
func ExampleServiceConfigFor_pin() {
	aAddr, stopA := serve("stock-room-a")
	defer stopA()
	bAddr, stopB := serve("stock-room-b")
	defer stopB()

	r := envbalancer.ManualResolver("zoned",
		envtag.Endpoint{Addr: aAddr, Zone: "room-a"},
		envtag.Endpoint{Addr: bAddr, Zone: "room-b"})
	sc, err := envbalancer.ServiceConfigFor(envtag.Config{Zone: "room-a", Pin: map[string]string{"drill-7": "room-b"}}, "stock")
	if err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient("zoned:///stock", grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(sc), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	whoServes := func(run, want string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = propagation.With(ctx, propagation.Mark{Run: run})
		for {
			var md metadata.MD
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
			if err == nil {
				// Served: the instance wanted, or (want "") a spill.
				if s := md.Get("served-by")[0]; s == want || want == "" || ctx.Err() != nil {
					return s
				}
			} else if status.Code(err) == codes.Unavailable && want == "" || ctx.Err() != nil {
				return status.Code(err).String()
			}
			time.Sleep(5 * time.Millisecond) // connections still coming up
		}
	}
	fmt.Println("production ->", whoServes("", "stock-room-a"))
	fmt.Println("drill-7    ->", whoServes("drill-7", "stock-room-b"))
	stopB()
	fmt.Println("drill-7, room-b down ->", whoServes("drill-7", ""))
	fmt.Println("production, room-b down ->", whoServes("", "stock-room-a"))
	// Output:
	// production -> stock-room-a
	// drill-7    -> stock-room-b
	// drill-7, room-b down -> Unavailable
	// production, room-b down -> stock-room-a
}
