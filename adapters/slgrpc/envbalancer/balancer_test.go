package envbalancer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// server is a real gRPC server on loopback that names itself in the
// "served-by" response header of every call.
type server struct {
	name string
	addr string
	srv  *grpc.Server
	n    atomic.Int64 // calls served, counted by the server itself
}

func startServer(t *testing.T, name string) *server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, addr: lis.Addr().String()}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		s.n.Add(1)
		_ = grpc.SetHeader(ctx, metadata.Pairs("served-by", name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s.srv, health.NewServer())
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *server) ep(env string) envtag.Endpoint { return envtag.Endpoint{Addr: s.addr, Env: env} }

// dial connects to target through resolver r with the env balancer; sc is
// the service config ("" = envbalancer.DialOption).
func dial(t *testing.T, r resolver.Builder, target, sc string) healthpb.HealthClient {
	t.Helper()
	opt := envbalancer.DialOption()
	if sc != "" {
		opt = grpc.WithDefaultServiceConfig(sc)
	}
	conn, err := grpc.NewClient(target, grpc.WithResolvers(r), opt,
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%x", prefix, rand.Uint32()) }

// call makes one call tagged env (and run, for load-test traffic) and
// returns the name of the server that answered.
func call(c healthpb.HealthClient, run, env string, timeout time.Duration, opts ...grpc.CallOption) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = propagation.With(ctx, propagation.Mark{Run: run, Env: env})
	var md metadata.MD
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, append(opts, grpc.Header(&md))...)
	if err != nil {
		return "", err
	}
	return strings.Join(md.Get("served-by"), ","), nil
}

// until calls with tag env until want answers (5 s at most); every answer
// is passed to check first.
func until(t *testing.T, c healthpb.HealthClient, env, want string, check func(got string)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := call(c, "", env, time.Second)
		if got != "" && check != nil {
			check(got)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tag %q: %q never answered (last %q)", env, want, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// neverProject fails t when an untagged call was served by a project
// instance.
func neverProject(t *testing.T) func(string) {
	return func(got string) {
		if got != "trunk" && got != "trunk2" {
			t.Errorf("untagged call served by %q: untagged traffic must never reach a project instance", got)
		}
	}
}

func TestRoutingByTag(t *testing.T) {
	trunk, a, b := startServer(t, "trunk"), startServer(t, "proj-a"), startServer(t, "proj-b")
	svc := uniq("orders")
	r := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"), b.ep("proj-b"))
	c := dial(t, r, "test:///"+svc, "")
	until(t, c, "", "trunk", neverProject(t))
	until(t, c, "proj-a", "proj-a", nil)
	until(t, c, "proj-b", "proj-b", nil)

	before := envtag.Lookup(svc, propagation.ClassProduction)
	beforeLT := envtag.Lookup(svc, propagation.ClassLoadTest)
	cases := []struct{ run, tag, want string }{
		{"", "", "trunk"},
		{"", "proj-a", "proj-a"},
		{"", "proj-b", "proj-b"},
		{"", "proj-c", "trunk"},    // no proj-c instance: trunk
		{"r1", "proj-a", "proj-a"}, // load-test traffic routes the same way
		{"", "bad tag!", "trunk"},  // a malformed tag matches no lane
		{"r1", "", "trunk"},        // untagged load test: trunk
	}
	const n = 20
	for _, tc := range cases {
		for i := 0; i < n; i++ {
			got, err := call(c, tc.run, tc.tag, 2*time.Second)
			if err != nil || got != tc.want {
				t.Fatalf("run %q tag %q: served by %q, %v; want %q", tc.run, tc.tag, got, err, tc.want)
			}
		}
	}
	after := envtag.Lookup(svc, propagation.ClassProduction)
	afterLT := envtag.Lookup(svc, propagation.ClassLoadTest)
	if d := after.Lane - before.Lane; d != 2*n {
		t.Errorf("production lane hits +%d, want %d", d, 2*n)
	}
	if d := after.Fallback - before.Fallback; d != 2*n {
		t.Errorf("production fallbacks +%d, want %d", d, 2*n)
	}
	if d := after.Trunk - before.Trunk; d != n {
		t.Errorf("production trunk picks +%d, want %d", d, n)
	}
	if d := afterLT.Lane - beforeLT.Lane; d != n {
		t.Errorf("load-test lane hits +%d, want %d", d, n)
	}
	if d := afterLT.Trunk - beforeLT.Trunk; d != n {
		t.Errorf("load-test trunk picks +%d, want %d", d, n)
	}
}

func TestRoundRobinWithinLane(t *testing.T) {
	trunk, a1, a2 := startServer(t, "trunk"), startServer(t, "a1"), startServer(t, "a2")
	r := envbalancer.ManualResolver("test", trunk.ep(""), a1.ep("proj-a"), a2.ep("proj-a"))
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "proj-a", "a1", nil)
	until(t, c, "proj-a", "a2", nil)
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		got, err := call(c, "", "proj-a", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seen[got]++
	}
	if seen["a1"] != 20 || seen["a2"] != 20 {
		t.Fatalf("proj-a calls spread %v, want 20/20 round robin over a1 and a2 only", seen)
	}
}

// With no trunk instance, an untagged call fails at once: it never spills
// into a project environment, even wait-for-ready with a long deadline.
func TestUntaggedNeverReachesProject(t *testing.T) {
	a, b := startServer(t, "proj-a"), startServer(t, "proj-b")
	// A malformed label is not trunk either.
	bad := startServer(t, "bad-label")
	r := manual.NewBuilderWithScheme("test")
	r.InitialState(resolver.State{Endpoints: []resolver.Endpoint{
		envbalancer.Endpoint("proj-a", a.addr),
		envbalancer.Endpoint("proj-b", b.addr),
		envbalancer.Endpoint("bad label!", bad.addr),
	}})
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "proj-a", "proj-a", nil)
	until(t, c, "proj-b", "proj-b", nil)
	for _, run := range []string{"", "r1"} {
		for i := 0; i < 10; i++ {
			start := time.Now()
			got, err := call(c, run, "", 5*time.Second, grpc.WaitForReady(true))
			if err == nil {
				t.Fatalf("untagged call (run %q) served by %q", run, got)
			}
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("untagged call: %v, want Unavailable", err)
			}
			if el := time.Since(start); el > time.Second {
				t.Fatalf("untagged miss took %v: must fail fast", el)
			}
		}
	}
	// The malformed-label instance serves nobody, not even its own "tag".
	if got, err := call(c, "", "bad label!", time.Second); err == nil {
		t.Fatalf("malformed-label instance served %q", got)
	}
}

func TestStrictMissFailsFast(t *testing.T) {
	trunk, a := startServer(t, "trunk"), startServer(t, "proj-a")
	sc, err := envbalancer.ServiceConfigFor(envtag.Config{StrictServices: []string{"orders"}}, "orders")
	if err != nil {
		t.Fatal(err)
	}
	r := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"))
	c := dial(t, r, "test:///x", sc)
	until(t, c, "", "trunk", neverProject(t))
	until(t, c, "proj-a", "proj-a", nil)

	start := time.Now()
	got, err := call(c, "", "proj-c", 10*time.Second, grpc.WaitForReady(true))
	el := time.Since(start)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("strict miss: served by %q, err %v; want Unavailable", got, err)
	}
	if el > 500*time.Millisecond {
		t.Fatalf("strict miss took %v of a 10s deadline: must fail fast", el)
	}
	if !strings.Contains(status.Convert(err).Message(), `strict`) {
		t.Errorf("error does not say why: %v", err)
	}
	if got, err := call(c, "", "proj-a", 2*time.Second); got != "proj-a" {
		t.Fatalf("strict hit: %q, %v", got, err)
	}
	if envtag.Lookup("orders", propagation.ClassProduction).Miss == 0 {
		t.Errorf("strict miss not counted")
	}
}

func TestConfiguredFallback(t *testing.T) {
	trunk, base := startServer(t, "trunk"), startServer(t, "proj-base")
	sc, err := envbalancer.ServiceConfigFor(envtag.Config{Fallback: map[string][]string{"*": {"proj-base"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	r := envbalancer.ManualResolver("test", trunk.ep(""), base.ep("proj-base"))
	c := dial(t, r, "test:///"+uniq("orders"), sc)
	until(t, c, "proj-base", "proj-base", nil)
	until(t, c, "", "trunk", neverProject(t))
	for i := 0; i < 10; i++ {
		if got, err := call(c, "", "proj-x", 2*time.Second); got != "proj-base" {
			t.Fatalf("proj-x with fallback proj-base: %q, %v", got, err)
		}
		if got, err := call(c, "", "", 2*time.Second); got != "trunk" {
			t.Fatalf("untagged: %q, %v", got, err)
		}
	}
}

// A project instance that stops hands its share back to trunk; a strict
// client fails fast instead.
func TestStoppedLaneFallsBackToTrunk(t *testing.T) {
	trunk, a := startServer(t, "trunk"), startServer(t, "proj-a")
	r1 := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"))
	c := dial(t, r1, "test:///"+uniq("orders"), "")
	sc, _ := envbalancer.ServiceConfigFor(envtag.Config{Strict: true}, "")
	r2 := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"))
	strict := dial(t, r2, "test:///"+uniq("orders"), sc)
	until(t, c, "proj-a", "proj-a", nil)
	until(t, strict, "proj-a", "proj-a", nil)

	a.srv.Stop()
	until(t, c, "proj-a", "trunk", nil)
	for i := 0; i < 20; i++ {
		if got, err := call(c, "", "proj-a", 2*time.Second); got != "trunk" {
			t.Fatalf("proj-a after its instance stopped: %q, %v; want trunk", got, err)
		}
		if got, err := call(c, "", "", 2*time.Second); got != "trunk" {
			t.Fatalf("untagged: %q, %v", got, err)
		}
	}
	// The strict client stops serving proj-a: fast Unavailable once the
	// subchannel has failed (it may first see the failing connection).
	deadline := time.Now().Add(5 * time.Second)
	for {
		start := time.Now()
		_, err := call(strict, "", "proj-a", 5*time.Second, grpc.WaitForReady(true))
		el := time.Since(start)
		if status.Code(err) == codes.Unavailable && el < 500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("strict proj-a after stop: %v after %v", err, el)
		}
	}
}

// Endpoints coming and going through the resolver update routing.
func TestResolverUpdates(t *testing.T) {
	trunk, a, b := startServer(t, "trunk"), startServer(t, "proj-a"), startServer(t, "proj-b")
	r := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"))
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "proj-a", "proj-a", nil)
	if got, _ := call(c, "", "proj-b", time.Second); got != "trunk" {
		t.Fatalf("proj-b before it exists: %q", got)
	}
	envbalancer.Update(r, trunk.ep(""), a.ep("proj-a"), b.ep("proj-b"))
	until(t, c, "proj-b", "proj-b", nil)
	envbalancer.Update(r, trunk.ep(""), b.ep("proj-b"))
	until(t, c, "proj-a", "trunk", nil)
	// A relabelled instance: the proj-b server now registered as proj-a.
	envbalancer.Update(r, trunk.ep(""), b.ep("proj-a"))
	until(t, c, "proj-a", "proj-b", nil)
	until(t, c, "proj-b", "trunk", nil)
}

func TestRegistryResolver(t *testing.T) {
	trunk, a := startServer(t, "trunk"), startServer(t, "proj-a")
	reg, err := envtag.NewStaticRegistry(nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := uniq("orders")
	c := dial(t, envbalancer.NewResolver(reg, ""), "shadowlane:///"+svc, "")
	// Nothing registered: fails fast, does not hang.
	start := time.Now()
	if _, err := call(c, "", "", 5*time.Second); status.Code(err) != codes.Unavailable || time.Since(start) > time.Second {
		t.Fatalf("empty registry: %v after %v", err, time.Since(start))
	}
	if err := reg.Set(svc, []envtag.Endpoint{trunk.ep("")}); err != nil {
		t.Fatal(err)
	}
	until(t, c, "proj-a", "trunk", nil)
	if err := reg.Set(svc, []envtag.Endpoint{trunk.ep(""), a.ep("proj-a")}); err != nil {
		t.Fatal(err)
	}
	until(t, c, "proj-a", "proj-a", nil)
	until(t, c, "", "trunk", neverProject(t))
	if err := reg.Set(svc, []envtag.Endpoint{trunk.ep("")}); err != nil {
		t.Fatal(err)
	}
	until(t, c, "proj-a", "trunk", nil)
}

func TestDefaultPolicyApplies(t *testing.T) {
	trunk := startServer(t, "trunk")
	r := envbalancer.ManualResolver("test", trunk.ep(""))
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "proj-a", "trunk", nil)
	p, err := envtag.NewPolicy(envtag.Config{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	envtag.SetDefaultPolicy(p)
	defer envtag.SetDefaultPolicy(nil)
	if _, err := call(c, "", "proj-a", 2*time.Second); status.Code(err) != codes.Unavailable {
		t.Fatalf("global strict: %v, want Unavailable", err)
	}
	envtag.SetDefaultPolicy(nil)
	if got, err := call(c, "", "proj-a", 2*time.Second); got != "trunk" {
		t.Fatalf("default rule again: %q, %v", got, err)
	}
}

func TestBadServiceConfig(t *testing.T) {
	_, err := envbalancer.ServiceConfigFor(envtag.Config{Fallback: map[string][]string{"proj-a": {"no spaces"}}}, "")
	if !errors.Is(err, propagation.ErrMalformed) {
		t.Fatalf("bad fallback: %v", err)
	}
	_, err = grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"shadowlane_env":{"fallback":{"a":["a"]}}}]}`))
	if err == nil {
		t.Fatal("self-fallback config accepted")
	}
}
