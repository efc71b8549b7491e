package envbalancer_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
)

// uncheckedRegistry is an envtag.Registry that delivers whatever it is
// given, conflicts included (a third-party registry that does not check).
type uncheckedRegistry struct {
	mu   sync.Mutex
	cur  []envtag.Endpoint
	subs []func([]envtag.Endpoint)
}

func (r *uncheckedRegistry) Watch(ctx context.Context, _ string, update func([]envtag.Endpoint)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	update(r.cur)
	r.subs = append(r.subs, update)
	return nil
}

func (r *uncheckedRegistry) set(eps ...envtag.Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = eps
	for _, u := range r.subs {
		u(eps)
	}
}

// An update that lists the proj-a instance under trunk too (first, so
// that it would win) is refused by the balancer, whatever resolver sent
// it: untagged calls never reach the project instance.
func TestConflictingUpdateRefused(t *testing.T) {
	trunk, a := startServer(t, "trunk"), startServer(t, "proj-a")
	r := envbalancer.ManualResolver("test", trunk.ep(""), a.ep("proj-a"))
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "", "trunk", neverProject(t))
	until(t, c, "proj-a", "proj-a", nil)

	orders := [][]envtag.Endpoint{ // every order: which copy grpc keeps depends on it
		{a.ep(""), trunk.ep(""), a.ep("proj-a")}, {trunk.ep(""), a.ep(""), a.ep("proj-a")},
		{a.ep(""), a.ep("proj-a"), trunk.ep("")}, {a.ep("proj-a"), a.ep(""), trunk.ep("")},
		{trunk.ep(""), a.ep("proj-a"), a.ep("")}, {a.ep("proj-a"), trunk.ep(""), a.ep("")},
	}
	for i := 0; i < 240; i++ {
		if i%20 == 0 {
			envbalancer.Update(r, orders[i/20%len(orders)]...)
		}
		got, err := call(c, "", "", 2*time.Second)
		if err != nil || got != "trunk" {
			t.Fatalf("untagged call #%d after a conflicting update: %q, %v; want trunk only", i, got, err)
		}
		if got, err := call(c, "", "proj-a", 2*time.Second); err != nil || got != "proj-a" {
			t.Fatalf("proj-a call #%d: %q, %v", i, got, err)
		}
	}
	// A consistent update is taken again.
	b := startServer(t, "proj-b")
	envbalancer.Update(r, trunk.ep(""), a.ep("proj-a"), b.ep("proj-b"))
	until(t, c, "proj-b", "proj-b", nil)
}

// The registry resolver refuses a conflicting set from a registry that
// does not check, keeping the previous one; a first set that conflicts
// fails calls fast with an error naming the address.
func TestRegistryResolverRefusesConflict(t *testing.T) {
	trunk, a := startServer(t, "trunk"), startServer(t, "proj-a")
	reg := &uncheckedRegistry{}
	reg.set(trunk.ep(""), a.ep("proj-a"))
	c := dial(t, envbalancer.NewResolver(reg, ""), "shadowlane:///"+uniq("orders"), "")
	until(t, c, "", "trunk", neverProject(t))
	until(t, c, "proj-a", "proj-a", nil)
	orders := [][]envtag.Endpoint{
		{a.ep(""), trunk.ep(""), a.ep("proj-a")}, {trunk.ep(""), a.ep(""), a.ep("proj-a")},
		{a.ep(""), a.ep("proj-a"), trunk.ep("")}, {a.ep("proj-a"), a.ep(""), trunk.ep("")},
		{trunk.ep(""), a.ep("proj-a"), a.ep("")}, {a.ep("proj-a"), trunk.ep(""), a.ep("")},
	}
	for i := 0; i < 240; i++ {
		if i%20 == 0 {
			reg.set(orders[i/20%len(orders)]...)
		}
		if got, err := call(c, "", "", 2*time.Second); err != nil || got != "trunk" {
			t.Fatalf("untagged call #%d after a conflicting registry set: %q, %v", i, got, err)
		}
	}

	// A first set that conflicts: nothing to keep, calls fail fast.
	bad := &uncheckedRegistry{}
	bad.set(a.ep(""), a.ep("proj-a"))
	c2 := dial(t, envbalancer.NewResolver(bad, ""), "shadowlane:///"+uniq("orders"), "")
	for _, tag := range []string{"", "proj-a"} {
		got, err := call(c2, "", tag, 10*time.Second)
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), a.addr) {
			t.Fatalf("tag %q with only a conflicting set: %q, %v; want Unavailable naming %s", tag, got, err, a.addr)
		}
	}
}

// blackhole accepts TCP connections and never answers: a gRPC subchannel
// to it stays CONNECTING until its connect timeout (20 s).
func blackhole(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return lis.Addr().String()
}

// Strict mode while the only instance of the lane is CONNECTING (accepted,
// never answers): calls fail with Unavailable after the connect grace
// instead of waiting out their deadline; the lane is never replaced by
// trunk; untagged calls are served by trunk throughout.
func TestStrictConnectingLaneFailsAfterGrace(t *testing.T) {
	trunk := startServer(t, "trunk")
	hole := blackhole(t)
	for _, grace := range []time.Duration{300 * time.Millisecond, 0 /* default: 1s */} {
		sc, err := envbalancer.ServiceConfigFor(envtag.Config{Strict: true, ConnectGrace: envtag.Duration(grace)}, "")
		if err != nil {
			t.Fatal(err)
		}
		r := envbalancer.ManualResolver("test", trunk.ep(""), envtag.Endpoint{Addr: hole, Env: "proj-a"})
		c := dial(t, r, "test:///"+uniq("orders"), sc)
		until(t, c, "", "trunk", neverProject(t))
		for i := 0; i < 5; i++ {
			for _, wfr := range []bool{false, true} {
				got, err := call(c, "", "proj-a", 15*time.Second, grpc.WaitForReady(wfr))
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("grace %v: strict proj-a call (wait-for-ready %v) with its only instance connecting: %q, %v; want Unavailable before the 15s deadline", grace, wfr, got, err)
				}
				if !strings.Contains(status.Convert(err).Message(), "strict") {
					t.Errorf("error does not say why: %v", err)
				}
			}
		}
		if got, err := call(c, "", "", 2*time.Second); got != "trunk" {
			t.Fatalf("untagged: %q, %v", got, err)
		}
	}
}

// stalledForever is an envtag.StallClock of a process that is stalled
// without end (each reading an hour more). Its first reading after the
// connect grace (the balancer's grace timer) is announced on late.
type stalledForever struct {
	grace time.Duration
	mu    sync.Mutex
	first time.Time
	total time.Duration
	late  chan struct{}
	once  sync.Once
}

func (s *stalledForever) Stalled() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.first.IsZero() {
		s.first = now
	} else if now.Sub(s.first) >= s.grace {
		s.once.Do(func() { close(s.late) })
	}
	s.total += time.Hour
	return s.total
}

// While the process is stalled, a strict lane whose only instance is
// still connecting stays pending past its connect grace (the grace
// stretches by the stall): a call waits for it (and here runs out of its
// deadline) instead of failing with Unavailable. The stall is simulated
// with a fake clock; without it the same call fails fast
// (TestStrictConnectingLaneFailsAfterGrace).
func TestConnectGraceStretchesByStall(t *testing.T) {
	const grace = 50 * time.Millisecond
	stalls := &stalledForever{grace: grace, late: make(chan struct{})}
	envbalancer.SetStallClock(stalls)
	defer envbalancer.SetStallClock(nil)
	hole := blackhole(t)
	sc, err := envbalancer.ServiceConfigFor(envtag.Config{Strict: true, ConnectGrace: envtag.Duration(grace)}, "")
	if err != nil {
		t.Fatal(err)
	}
	r := envbalancer.ManualResolver("test", envtag.Endpoint{Addr: hole, Env: "proj-a"})
	c := dial(t, r, "test:///"+uniq("orders"), sc)
	go call(c, "", "proj-a", 10*time.Second) // starts the connect
	select {
	case <-stalls.late: // the grace timer looked at the stall clock
	case <-time.After(time.Minute):
		t.Fatal("the balancer never re-checked the grace")
	}
	got, err := call(c, "", "proj-a", 300*time.Millisecond)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("strict proj-a call while the process is stalled: %q, %v; want it to wait for the connecting instance (DeadlineExceeded)", got, err)
	}
}
