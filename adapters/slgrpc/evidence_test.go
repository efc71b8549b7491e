package slgrpc_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
)

// failing answers Check and Watch with the outcome the request's service
// names: "internal", "notfound", "unavailable", "panic" or "" (serving).
type failing struct {
	healthpb.UnimplementedHealthServer
}

func outcome(service string) error {
	switch service {
	case "internal":
		return status.Error(codes.Internal, "boom")
	case "notfound":
		return status.Error(codes.NotFound, "no such thing")
	case "unavailable":
		return status.Error(codes.Unavailable, "down")
	case "panic":
		panic("handler bug")
	}
	return nil
}

func (failing) Check(_ context.Context, r *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := outcome(r.Service); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (failing) Watch(r *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if err := outcome(r.Service); err != nil {
		return err
	}
	return s.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// recoverUnary turns a handler's panic into Internal, as a recovery
// interceptor outside shadowlane's does.
func recoverUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Error(codes.Internal, "panic")
		}
	}()
	return h(ctx, req)
}

// A real server on loopback: marked calls are counted per run under their
// full method name, and their server errors (the codes of ServerError) and
// panics as errors of the run; client-class codes and production calls
// count none.
func TestRunEvidenceServer(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(recoverUnary, slgrpc.UnaryServerInterceptor(slgrpc.WithRuntime(rt))),
		grpc.ChainStreamInterceptor(slgrpc.StreamServerInterceptor(slgrpc.WithRuntime(rt))))
	healthpb.RegisterHealthServer(s, failing{})
	go s.Serve(ln)
	defer s.Stop()
	client := healthpb.NewHealthClient(mustConn(t, ln.Addr().String()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	marked := metadata.AppendToOutgoingContext(ctx, "x-shadowlane-run", "grpc-r1")

	check := func(ctx context.Context, service string) codes.Code {
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return status.Code(err)
	}
	watch := func(ctx context.Context, service string) codes.Code {
		st, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return status.Code(err)
		}
		_, err = st.Recv()
		return status.Code(err)
	}
	for _, c := range []struct {
		ctx     context.Context
		call    func(context.Context, string) codes.Code
		service string
		want    codes.Code
	}{
		{marked, check, "", codes.OK},
		{marked, check, "", codes.OK},
		{marked, check, "internal", codes.Internal},
		{marked, check, "internal", codes.Internal},
		{marked, check, "notfound", codes.NotFound},
		{marked, check, "panic", codes.Internal},
		{marked, watch, "", codes.OK},
		{marked, watch, "unavailable", codes.Unavailable},
		{ctx, check, "internal", codes.Internal}, // production
		{ctx, watch, "unavailable", codes.Unavailable},
	} {
		if got := c.call(c.ctx, c.service); got != c.want {
			t.Fatalf("%q: %v, want %v", c.service, got, c.want)
		}
	}
	ev := rt.RunStatus("grpc-r1")
	wantEntries := []shadowlane.RunEntry{
		{Entry: "grpc", Route: "/grpc.health.v1.Health/Check", Marked: 6},
		{Entry: "grpc", Route: "/grpc.health.v1.Health/Watch", Marked: 2},
	}
	if !slices.Equal(ev.Entries, wantEntries) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	wantErrors := []shadowlane.RunErrorRows{{Reason: "grpc Internal", N: 2}, {Reason: "grpc Unavailable", N: 1}, {Reason: "grpc panic", N: 1}}
	if !slices.Equal(ev.Errors, wantErrors) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
	for c, want := range map[codes.Code]bool{codes.Unknown: true, codes.DeadlineExceeded: true, codes.Unimplemented: true,
		codes.Internal: true, codes.Unavailable: true, codes.DataLoss: true, codes.OK: false, codes.NotFound: false,
		codes.Canceled: false, codes.ResourceExhausted: false, codes.InvalidArgument: false, codes.Aborted: false} {
		if slgrpc.ServerError(c) != want {
			t.Errorf("ServerError(%v) = %v", c, !want)
		}
	}
}
