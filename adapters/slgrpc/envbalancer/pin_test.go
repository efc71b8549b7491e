package envbalancer_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// TestZonePin: real loopback gRPC servers, two zones with two trunk
// instances each; the caller is in zone a and load-test run rb is pinned
// to zone b (through envtag.DefaultPolicy, as a reload would set it).
// The pinned run reaches only zone b (counted at the servers), production
// stays in zone a, zone b stopped for real refuses the pinned run
// (Unavailable, naming the pin) while production carries on, and a policy
// change unpins at the next pick.
func TestZonePin(t *testing.T) {
	p0, err := envtag.NewPolicy(envtag.Config{Zone: "a", Pin: map[string]string{"rb": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	envtag.SetDefaultPolicy(p0)
	defer envtag.SetDefaultPolicy(nil)

	names := []string{"ta1", "ta2", "tb1", "tb2"}
	srv := map[string]*server{}
	var eps []envtag.Endpoint
	for _, n := range names {
		srv[n] = startServer(t, n)
		eps = append(eps, envtag.Endpoint{Addr: srv[n].addr, Zone: string(n[1])})
	}
	hits := func() map[string]int64 {
		out := map[string]int64{}
		for n, s := range srv {
			out[n] = s.n.Load()
		}
		return out
	}
	delta := func(before map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for n, v := range hits() {
			if d := v - before[n]; d != 0 {
				out[n] = d
			}
		}
		return out
	}
	svc := uniq("pinned")
	r := envbalancer.ManualResolver(uniq("pin"), eps...)
	c := dial(t, r, r.Scheme()+":///"+svc, "")
	// wait until one of want answers a call by run (5 s at most).
	wait := func(run string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := call(c, run, "", time.Second)
			for _, w := range want {
				if got == w {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %q: none of %v answered (last %q)", run, want, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("rb", "tb1")
	wait("rb", "tb2")
	wait("", "ta1")
	wait("", "ta2")
	st := envtag.DefaultStats()
	z0 := st.Zone(svc, propagation.ClassLoadTest)

	send := func(run string, n int) (errs []error) {
		for i := 0; i < n; i++ {
			if _, err := call(c, run, "", 5*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	}
	h := hits()
	if errs := send("rb", 40); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["tb1"]+d["tb2"] != 40 || d["tb1"] == 0 || d["tb2"] == 0 {
		t.Fatalf("pinned run: servers counted %v, want 40 on zone b only, both instances", d)
	}
	h = hits()
	if errs := append(send("", 40), send("r2", 20)...); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["ta1"]+d["ta2"] != 60 || d["ta1"] == 0 || d["ta2"] == 0 {
		t.Fatalf("production and unpinned run: servers counted %v, want 60 on zone a", d)
	}
	if z := st.Zone(svc, propagation.ClassLoadTest); z.Pinned-z0.Pinned != 40 || z.PinRefused != z0.PinRefused {
		t.Fatalf("pinned counts %+v (before %+v), want +40 picks", z, z0)
	}

	// Zone b stopped for real: once the balancer sees both down, the
	// pinned run is refused at the pick (nothing sent), never spilled.
	srv["tb1"].srv.Stop()
	srv["tb2"].srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := call(c, "rb", "", time.Second)
		if status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "pinned") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pinned run with zone b down: %v, want Unavailable naming the pin", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	z1 := st.Zone(svc, propagation.ClassLoadTest)
	h = hits()
	errs := send("rb", 20)
	if len(errs) != 20 {
		t.Fatalf("pinned run with zone b down: %d of 20 refused", len(errs))
	}
	for _, err := range errs {
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `pinned to zone "b"`) {
			t.Fatalf("refusal %v", err)
		}
	}
	if d := delta(h); len(d) != 0 {
		t.Fatalf("pinned run with zone b down reached %v", d)
	}
	if z := st.Zone(svc, propagation.ClassLoadTest); z.PinRefused-z1.PinRefused != 20 {
		t.Fatalf("pinned refusals %+v (before %+v), want +20", z, z1)
	}
	h = hits()
	if errs := send("", 20); len(errs) > 0 {
		t.Fatalf("production with zone b down: %v", errs[0])
	}
	if d := delta(h); d["ta1"]+d["ta2"] != 20 {
		t.Fatalf("production: servers counted %v", d)
	}

	// Reload without the pin: the run follows the zone rule again.
	p1, _ := envtag.NewPolicy(envtag.Config{Zone: "a"})
	envtag.SetDefaultPolicy(p1)
	h = hits()
	if errs := send("rb", 10); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["ta1"]+d["ta2"] != 10 {
		t.Fatalf("unpinned by reload: servers counted %v", d)
	}
}
