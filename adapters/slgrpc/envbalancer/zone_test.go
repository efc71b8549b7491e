package envbalancer_test

import (
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// TestZoneAffinity: real loopback gRPC servers, two zones with two
// instances each in trunk and in lane proj-x; the caller is in zone a with
// spill fraction 0.5.
func TestZoneAffinity(t *testing.T) {
	names := []string{"ta1", "ta2", "tb1", "tb2", "xa1", "xa2", "xb1", "xb2"}
	srv := map[string]*server{}
	for _, n := range names {
		srv[n] = startServer(t, n)
	}
	eps := func(ns ...string) []envtag.Endpoint {
		var out []envtag.Endpoint
		for _, n := range ns {
			e := envtag.Endpoint{Addr: srv[n].addr, Zone: string(n[1])}
			if n[0] == 'x' {
				e.Env = "proj-x"
			}
			out = append(out, e)
		}
		return out
	}
	svc := uniq("zoned")
	r := envbalancer.ManualResolver(uniq("zone"), eps(names...)...)
	sc, err := envbalancer.ServiceConfigFor(envtag.Config{Zone: "a", ZoneSpill: 0.5}, svc)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r, r.Scheme()+":///"+svc, sc)

	served := func(n int, run, env string) map[string]int {
		t.Helper()
		out := map[string]int{}
		for i := 0; i < n; i++ {
			got, err := call(c, run, env, 5*time.Second)
			if err != nil {
				t.Fatalf("tag %q: %v", env, err)
			}
			out[got]++
		}
		return out
	}
	only := func(got map[string]int, allowed ...string) {
		t.Helper()
		ok := map[string]bool{}
		for _, a := range allowed {
			ok[a] = true
		}
		for n := range got {
			if !ok[n] {
				t.Fatalf("served by %v; allowed only %v", got, allowed)
			}
		}
	}
	// wait calls until a call is answered by one of want (5 s at most).
	wait := func(run, env string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := call(c, run, env, time.Second)
			for _, w := range want {
				if got == w {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("tag %q: none of %v answered (last %q)", env, want, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	st := envtag.DefaultStats()
	// Connections come up one by one; while zone b is still connecting
	// the local share only grows, so zone a alone answers either way.
	wait("", "", "ta1")
	wait("", "", "ta2")
	wait("r1", "proj-x", "xa1")
	wait("r1", "proj-x", "xa2")

	prod0, lt0 := st.Zone(svc, propagation.ClassProduction), st.Zone(svc, propagation.ClassLoadTest)
	got := served(40, "", "")
	only(got, "ta1", "ta2")
	if got["ta1"] == 0 || got["ta2"] == 0 {
		t.Fatalf("untagged: %v, want both zone-a trunk instances", got)
	}
	got = served(40, "r1", "proj-x")
	only(got, "xa1", "xa2")
	only(served(20, "", "proj-y"), "ta1", "ta2") // no lane: trunk, zone a
	if z := st.Zone(svc, propagation.ClassLoadTest); z.SameZone-lt0.SameZone != 40 || z.Spilled != lt0.Spilled {
		t.Fatalf("load-test zone counts %+v (before %+v)", z, lt0)
	}
	if z := st.Zone(svc, propagation.ClassProduction); z.SameZone-prod0.SameZone != 60 || z.Spilled != prod0.Spilled {
		t.Fatalf("production zone counts %+v (before %+v)", z, prod0)
	}

	// xa1 killed: TRANSIENT_FAILURE leaves the lane with 1 local of 3
	// healthy, below 0.5: spill over the lane (xa2, xb1, xb2), never trunk.
	srv["xa1"].srv.Stop()
	wait("r1", "proj-x", "xb1")
	wait("r1", "proj-x", "xb2")
	got = served(60, "r1", "proj-x")
	only(got, "xa2", "xb1", "xb2")
	if got["xb1"] == 0 || got["xb2"] == 0 {
		t.Fatalf("spilled lane: %v, want zone-b instances", got)
	}
	if z := st.Zone(svc, propagation.ClassLoadTest); z.Spilled-lt0.Spilled < int64(got["xb1"]+got["xb2"]) {
		t.Fatalf("spilled picks %+v, want at least %d", z, got["xb1"]+got["xb2"])
	}
	only(served(20, "", ""), "ta1", "ta2") // production: trunk zone a intact

	// Trunk zone a removed from the resolver: untagged traffic spills to
	// trunk zone b and never reaches proj-x.
	envbalancer.Update(r, eps("tb1", "tb2", "xa2", "xb1", "xb2")...)
	wait("", "", "tb1")
	wait("", "", "tb2")
	only(served(40, "", ""), "tb1", "tb2")
	only(served(20, "", "proj-y"), "tb1", "tb2")
}
