package envtag_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestZoneSpills(t *testing.T) {
	for _, tc := range []struct {
		local, healthy int
		f              float64
		want           bool
	}{
		{2, 4, 0.5, false}, {1, 3, 0.5, true}, {0, 2, 0, true}, {1, 3, 0, false},
		{1, 1, 1, false}, {1, 2, 1, true}, {3, 5, 0.6, false}, {2, 5, 0.5, true},
	} {
		if got := envtag.ZoneSpills(tc.local, tc.healthy, tc.f); got != tc.want {
			t.Errorf("ZoneSpills(%d, %d, %v) = %v, want %v", tc.local, tc.healthy, tc.f, got, tc.want)
		}
	}
}

func TestZoneConfigValidation(t *testing.T) {
	for _, c := range []envtag.Config{{ZoneSpill: -0.1}, {ZoneSpill: 1.5}, {Zone: "a b"}} {
		if _, err := envtag.NewPolicy(c); err == nil {
			t.Errorf("NewPolicy(%+v): no error", c)
		}
	}
	p, err := envtag.NewPolicy(envtag.Config{Zone: "room-a", ZoneSpill: 0.5})
	if err != nil || p.Zone() != "room-a" || p.ZoneSpill() != 0.5 {
		t.Fatalf("policy %v %v", p, err)
	}
	if err := (envtag.Endpoint{Addr: "x:1", Zone: "bad zone"}).Validate(); !errors.Is(err, propagation.ErrMalformed) {
		t.Fatalf("bad zone label: %v", err)
	}
}

// TestPoolZone checks the rule on a pool: local only while the local share
// holds, spill over the whole lane below it, never another lane.
func TestPoolZone(t *testing.T) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", ZoneSpill: 0.5})
	st := envtag.NewStats()
	mk := func(env, zone, name string) envtag.Member[string] {
		return envtag.Member[string]{Env: env, Zone: zone, Item: name}
	}
	full := envtag.NewPool("svc", pol, []envtag.Member[string]{
		mk("", "a", "ta1"), mk("", "a", "ta2"), mk("", "b", "tb1"), mk("", "b", "tb2"),
		mk("p", "a", "pa1"), mk("p", "a", "pa2"), mk("p", "b", "pb1"), mk("p", "b", "pb2"),
	}, envtag.PoolStats(st))
	seen := map[string]int{}
	for i := 0; i < 100; i++ {
		u, _ := full.Pick(propagation.Mark{})
		p, _ := full.Pick(propagation.Mark{Env: "p", Run: "r"})
		seen[u]++
		seen[p]++
	}
	if seen["ta1"] == 0 || seen["ta2"] == 0 || seen["pa1"] == 0 || seen["pa2"] == 0 || len(seen) != 4 {
		t.Fatalf("same zone: picks %v; want only ta1, ta2, pa1, pa2", seen)
	}
	if z := st.Zone("svc", propagation.ClassLoadTest); z.SameZone != 100 || z.Spilled != 0 {
		t.Fatalf("load-test zone counts %+v", z)
	}
	// pa1 gone: 1 of 3 healthy is local, below 0.5: spill over the lane.
	spilled := envtag.NewPool("svc", pol, []envtag.Member[string]{
		mk("", "a", "ta1"), mk("", "b", "tb1"),
		mk("p", "a", "pa2"), mk("p", "b", "pb1"), mk("p", "b", "pb2"),
	}, envtag.PoolStats(st))
	seen = map[string]int{}
	for i := 0; i < 90; i++ {
		p, _ := spilled.Pick(propagation.Mark{Env: "p"})
		seen[p]++
	}
	if len(seen) != 3 || seen["pa2"] == 0 || seen["pb1"] == 0 || seen["pb2"] == 0 {
		t.Fatalf("spilled: picks %v; want pa2, pb1, pb2 only", seen)
	}
	z := st.Zone("svc", propagation.ClassProduction)
	if z.Spilled != int64(seen["pb1"]+seen["pb2"]) || z.SameZone != 100+int64(seen["pa2"]) {
		t.Fatalf("production zone counts %+v, picks %v", z, seen)
	}
	// Untagged traffic with half of trunk local stays local (1 ≥ 0.5×2).
	for i := 0; i < 20; i++ {
		if u, _ := spilled.Pick(propagation.Mark{}); u != "ta1" {
			t.Fatalf("untagged: %q, want ta1", u)
		}
	}
	// A caller without a zone: plain round robin over the lane.
	none := envtag.NewPool("svc", &envtag.Policy{}, []envtag.Member[string]{mk("p", "a", "pa1"), mk("p", "b", "pb1")})
	seen = map[string]int{}
	for i := 0; i < 20; i++ {
		p, _ := none.Pick(propagation.Mark{Env: "p"})
		seen[p]++
	}
	if seen["pa1"] != 10 || seen["pb1"] != 10 {
		t.Fatalf("no caller zone: %v", seen)
	}
}

// TestTransportZone: real loopback servers, two zones with two instances
// each in trunk and in lane proj-x; the caller is in zone a.
func TestTransportZone(t *testing.T) {
	names := []string{"ta1", "ta2", "tb1", "tb2", "xa1", "xa2", "xb1", "xb2"}
	srv := map[string]string{}
	stop := map[string]func(){}
	for _, n := range names {
		s := named(t, n)
		srv[n], stop[n] = addr(s), s.Close
	}
	ep := func(n string) envtag.Endpoint {
		e := envtag.Endpoint{Addr: srv[n], Zone: string(n[1])}
		if n[0] == 'x' {
			e.Env = "proj-x"
		}
		return e
	}
	eps := func(ns ...string) []envtag.Endpoint {
		var out []envtag.Endpoint
		for _, n := range ns {
			out = append(out, ep(n))
		}
		return out
	}
	svc := uniq("zoned")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: eps(names...)})
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", ZoneSpill: 0.5})
	st := envtag.NewStats()
	tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(pol), envtag.WithStats(st))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	url := "http://" + svc + "/"

	// served calls n times with mark m and counts who answered.
	served := func(n int, m propagation.Mark) map[string]int {
		t.Helper()
		out := map[string]int{}
		for i := 0; i < n; i++ {
			got, err := get(t, c, url, m)
			if err != nil {
				t.Fatalf("%v: %v", m, err)
			}
			out[strings.Fields(got)[0]]++
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
	prod, lane, other := propagation.Mark{}, propagation.Mark{Env: "proj-x", Run: "r1"}, propagation.Mark{Env: "proj-y"}

	got := served(40, prod)
	only(got, "ta1", "ta2")
	if got["ta1"] == 0 || got["ta2"] == 0 {
		t.Fatalf("untagged: %v, want both zone-a trunk instances", got)
	}
	got = served(40, lane)
	only(got, "xa1", "xa2")
	only(served(20, other), "ta1", "ta2") // no lane: falls back to trunk, zone a
	if z := st.Zone(svc, propagation.ClassLoadTest); z.SameZone != 40 || z.Spilled != 0 {
		t.Fatalf("load-test zone counts %+v", z)
	}
	if z := st.Zone(svc, propagation.ClassProduction); z.SameZone != 60 || z.Spilled != 0 {
		t.Fatalf("production zone counts %+v", z)
	}

	// xa1 removed: 1 of 3 healthy lane instances is local, below 0.5.
	reg.Set(svc, eps("ta1", "ta2", "tb1", "tb2", "xa2", "xb1", "xb2"))
	waitFor(t, func() bool { g := served(1, lane); return g["xa1"] == 0 && g["xb1"]+g["xb2"] > 0 })
	got = served(60, lane)
	only(got, "xa2", "xb1", "xb2")
	if got["xb1"] == 0 || got["xb2"] == 0 {
		t.Fatalf("spilled lane: %v, want zone-b instances", got)
	}
	only(served(20, prod), "ta1", "ta2") // production unaffected: trunk zone a intact

	// xa2 killed (still listed): connection failures retry in the lane
	// and eject it; every answer comes from zone b of proj-x.
	stop["xa2"]()
	got = served(40, lane)
	only(got, "xb1", "xb2")
	if z := st.Zone(svc, propagation.ClassLoadTest); z.Spilled == 0 {
		t.Fatalf("no spilled picks counted: %+v", z)
	}
	if row, z := st.Lookup(svc, propagation.ClassLoadTest), st.Zone(svc, propagation.ClassLoadTest); row.SameZone != z.SameZone || row.Spilled != z.Spilled || row.Lane != z.SameZone+z.Spilled {
		t.Fatalf("snapshot row %+v, zone %+v: every lane pick is same-zone or spilled", row, z)
	}

	// Trunk zone a gone: untagged traffic spills to trunk zone b and
	// never reaches proj-x.
	if err := reg.Set(svc, eps("tb1", "tb2", "xb1", "xb2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { g := served(1, prod); return g["ta1"]+g["ta2"] == 0 })
	only(served(40, prod), "tb1", "tb2")
	only(served(20, other), "tb1", "tb2")
}

func TestPoolZonePickNoAlloc(t *testing.T) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", ZoneSpill: 0.5})
	p := envtag.NewPool("svc", pol, []envtag.Member[string]{
		{Env: "p", Zone: "a", Item: "pa1"}, {Env: "p", Zone: "a", Item: "pa2"}, {Env: "p", Zone: "b", Item: "pb1"},
	}, envtag.PoolStats(envtag.NewStats()))
	m := propagation.Mark{Env: "p"}
	if n := testing.AllocsPerRun(100, func() { p.Pick(m) }); n != 0 {
		t.Fatalf("zoned Pick allocates %v times", n)
	}
}

func BenchmarkPoolPick(b *testing.B) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", ZoneSpill: 0.5})
	for _, tc := range []struct {
		name  string
		zones [4]string
	}{{"unzoned", [4]string{}}, {"zoned", [4]string{"a", "a", "b", "b"}}} {
		var ms []envtag.Member[int]
		for i, z := range tc.zones {
			ms = append(ms, envtag.Member[int]{Env: "p", Zone: z, Item: i})
		}
		p := envtag.NewPool("svc", pol, ms, envtag.PoolStats(envtag.NewStats()))
		m := propagation.Mark{Env: "p"}
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p.Pick(m)
			}
		})
	}
}

func TestPoolAnotherLocalFirst(t *testing.T) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a"})
	p := envtag.NewPool("svc", pol, []envtag.Member[string]{
		{Env: "p", Zone: "a", Item: "pa1"}, {Env: "p", Zone: "a", Item: "pa2"}, {Env: "p", Zone: "b", Item: "pb1"}, {Env: "q", Zone: "a", Item: "qa1"},
	})
	for i := 0; i < 10; i++ {
		if c, ok := p.Another("p", func(s string) bool { return s == "pa1" }); !ok || c != "pa2" {
			t.Fatalf("retry after pa1: %q %v, want pa2 (same zone first)", c, ok)
		}
		c, ok := p.Another("p", func(s string) bool { return s != "pb1" })
		if !ok || c != "pb1" {
			t.Fatalf("retry with zone a exhausted: %q %v, want pb1 (same lane, never q)", c, ok)
		}
	}
}
