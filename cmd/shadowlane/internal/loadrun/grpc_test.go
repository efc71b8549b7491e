package loadrun

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/propagation"
)

// health answers Check for the service names "ok-*" and NotFound for the
// others, counting the calls it saw marked and as production.
type health struct {
	healthpb.UnimplementedHealthServer
	mu             sync.Mutex
	marked, prod   int
	runs, services map[string]int
}

func (h *health) Check(ctx context.Context, r *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	m := propagation.FromContext(ctx)
	h.mu.Lock()
	if m.Run != "" {
		h.marked++
		h.runs[m.Run]++
	} else {
		h.prod++
	}
	h.services[r.Service]++
	h.mu.Unlock()
	if !strings.HasPrefix(r.Service, "ok-") {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestRunGRPCTargets: a gRPC server on loopback with reflection and the
// shadowlane interceptors at an edge: the run builds each request from its
// JSON template through reflection, every load-test call arrives marked
// with the run (its token verified), probes arrive as production, a
// NotFound answer counts as a 404, and the server's per-run evidence
// counts the load-test calls under the method.
func TestRunGRPCTargets(t *testing.T) {
	s := newShop(t) // its runtime (edge trust, keys) serves the gRPC server
	h := &health{runs: map[string]int{}, services: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(slgrpc.ServerOptions(slgrpc.WithRuntime(s.rt))...)
	healthpb.RegisterHealthServer(srv, h)
	reflection.Register(srv)
	go srv.Serve(ln)
	defer srv.Stop()
	sc := scenario(t, `
name: grpc
seed: 3
targets:
  - name: check
    kind: grpc
    url: grpc://`+ln.Addr().String()+`
    method: grpc.health.v1.Health/Check
    body: '{"service": "ok-{{.Seq}}"}'
    headers: {X-Client: "load-{{.Run}}"}
    weight: 3
  - name: missing
    kind: grpc
    url: grpc://`+ln.Addr().String()+`
    method: /grpc.health.v1.Health/Check
    body: '{"service": "nope"}'
  - name: probe
    kind: grpc
    url: grpc://`+ln.Addr().String()+`
    method: grpc.health.v1.Health/Check
    body: '{"service": "ok-probe"}'
    probe: true
stages:
  - {duration: 1500ms, from: 60, rate: 60}
`)
	rep, err := Run(context.Background(), s.options(t, sc, "run-grpc-1"))
	if err != nil {
		t.Fatal(err)
	}
	check, missing, probe := target(t, rep, "check"), target(t, rep, "missing"), target(t, rep, "probe")
	if check.Sent == 0 || missing.Sent == 0 || probe.Sent == 0 {
		t.Fatalf("sent check=%d missing=%d probe=%d", check.Sent, missing.Sent, probe.Sent)
	}
	if check.Errors != 0 || missing.Errors != missing.Sent || probe.Errors != 0 {
		t.Errorf("errors check=%d missing=%d/%d probe=%d; statuses %v", check.Errors, missing.Errors, missing.Sent, probe.Errors, rep.Statuses)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marked != int(check.Sent+missing.Sent) || h.prod != int(probe.Sent) || h.runs["run-grpc-1"] != h.marked {
		t.Errorf("server saw %d marked (runs %v), %d production; the run sent %d+%d load-test calls, %d probes",
			h.marked, h.runs, h.prod, check.Sent, missing.Sent, probe.Sent)
	}
	if h.services["nope"] != int(missing.Sent) {
		t.Errorf("the JSON template did not reach the server: %v", h.services)
	}
	ev := s.rt.RunStatus("run-grpc-1")
	if len(ev.Entries) != 1 || ev.Entries[0].Route != "/grpc.health.v1.Health/Check" || ev.Entries[0].Marked != check.Sent+missing.Sent {
		t.Errorf("server evidence %+v", ev.Entries)
	}
}

// A scenario's gRPC target is checked: a full method, a grpc:// address.
func TestScenarioGRPCTarget(t *testing.T) {
	for _, c := range []struct{ target, want string }{
		{"kind: grpc\n    url: grpc://127.0.0.1:1\n    method: Check", "want a full gRPC method"},
		{"kind: grpc\n    url: http://127.0.0.1:1\n    method: a.B/C", "want grpc://host:port"},
		{"kind: grpc\n    url: grpc://127.0.0.1:1/a.B/C\n    method: a.B/C", "want grpc://host:port"},
		{"kind: soap\n    url: http://127.0.0.1:1", "want http or grpc"},
	} {
		_, err := DecodeScenario([]byte("targets:\n  - name: x\n    " + c.target + "\nstages:\n  - {duration: 1s, rate: 1}\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.target, err, c.want)
		}
	}
}
