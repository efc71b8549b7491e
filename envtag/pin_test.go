package envtag_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestPinConfigValidation(t *testing.T) {
	for _, pin := range []map[string]string{
		{"bad run": "b"}, {"r1": ""}, {"r1": "room b"}, {"": "b"},
	} {
		if _, err := envtag.NewPolicy(envtag.Config{Pin: pin}); !errors.Is(err, propagation.ErrMalformed) {
			t.Errorf("pin %v: %v, want ErrMalformed", pin, err)
		}
	}
	p, err := envtag.NewPolicy(envtag.Config{Pin: map[string]string{"r1": "b", envtag.AnyRun: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	for run, want := range map[string]string{"r1": "b", "r2": "c", "": ""} {
		if got := p.PinZone(run); got != want {
			t.Errorf("PinZone(%q) = %q, want %q", run, got, want)
		}
	}
	if (*envtag.Policy)(nil).PinZone("r1") != "" {
		t.Error("nil policy pins")
	}
}

// TestPoolPin: the pin restricts the lane the env rule chose to one zone,
// fails closed when that zone has nothing ready, and leaves production
// and unpinned runs on the same-zone-first rule.
func TestPoolPin(t *testing.T) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", Pin: map[string]string{"rb": "b"}})
	st := envtag.NewStats()
	p := envtag.NewPool("svc", pol, []envtag.Member[string]{
		{Zone: "a", Item: "ta1"}, {Zone: "a", Item: "ta2"}, {Zone: "b", Item: "tb1"}, {Zone: "b", Item: "tb2"},
		{Env: "x", Zone: "a", Item: "xa1"}, {Env: "x", Zone: "b", Item: "xb1", Pending: true},
	}, envtag.PoolStats(st))
	count := func(m propagation.Mark, n int) map[string]int {
		t.Helper()
		out := map[string]int{}
		for i := 0; i < n; i++ {
			c, err := p.Pick(m)
			if err != nil {
				t.Fatalf("%+v: %v", m, err)
			}
			out[c]++
		}
		return out
	}
	if got := count(propagation.Mark{Run: "rb"}, 20); got["tb1"]+got["tb2"] != 20 || got["tb1"] == 0 || got["tb2"] == 0 {
		t.Fatalf("pinned run: %v, want zone b only, both instances", got)
	}
	if got := count(propagation.Mark{}, 20); got["ta1"]+got["ta2"] != 20 {
		t.Fatalf("production: %v, want zone a (same zone first)", got)
	}
	if got := count(propagation.Mark{Run: "r2"}, 20); got["ta1"]+got["ta2"] != 20 {
		t.Fatalf("unpinned run: %v, want zone a", got)
	}
	// Lane x: zone b only connecting: the pinned pick waits (ErrPending),
	// never takes xa1 and is not counted as a refusal.
	_, err := p.Pick(propagation.Mark{Run: "rb", Env: "x"})
	var pe *envtag.PinError
	if !errors.As(err, &pe) || !errors.Is(err, envtag.ErrPending) || !errors.Is(err, envtag.ErrZonePinned) || !errors.Is(err, envtag.ErrNoLane) || pe.Env != "x" || pe.Zone != "b" {
		t.Fatalf("pinned run in lane x: %v, want a pending PinError", err)
	}
	// Lane y does not exist: the env rule falls back to trunk, zone b.
	if got := count(propagation.Mark{Run: "rb", Env: "y"}, 4); got["tb1"]+got["tb2"] != 4 {
		t.Fatalf("pinned run falling back: %v", got)
	}
	z := st.Zone("svc", propagation.ClassLoadTest)
	if z.Pinned != 24 || z.PinRefused != 0 {
		t.Fatalf("zone counts %+v, want 24 pinned picks", z)
	}
	// Retries of a pinned run stay in its zone.
	if c, ok := p.AnotherFor(propagation.Mark{Run: "rb"}, "", func(s string) bool { return s == "tb1" }); !ok || c != "tb2" {
		t.Fatalf("pinned retry after tb1: %q %v", c, ok)
	}
	if c, ok := p.AnotherFor(propagation.Mark{Run: "rb"}, "", func(s string) bool { return s[1] == 'b' }); ok {
		t.Fatalf("pinned retry with zone b exhausted: %q, want none", c)
	}

	// Zone b of trunk gone: refused, counted, never spilled.
	p = envtag.NewPool("svc", pol, []envtag.Member[string]{{Zone: "a", Item: "ta1"}, {Item: "t0"}}, envtag.PoolStats(st))
	for i := 0; i < 5; i++ {
		if c, err := p.Pick(propagation.Mark{Run: "rb"}); !errors.As(err, &pe) || errors.Is(err, envtag.ErrPending) {
			t.Fatalf("pinned run without zone b: %q %v, want a PinError", c, err)
		}
	}
	if c, err := p.Pick(propagation.Mark{}); err != nil || c != "ta1" {
		t.Fatalf("production: %q %v", c, err)
	}
	if z := st.Zone("svc", propagation.ClassLoadTest); z.PinRefused != 5 {
		t.Fatalf("refusals %+v, want 5", z)
	}
	if row := st.Lookup("svc", propagation.ClassLoadTest); row.Pinned != 24 || row.PinRefused != 5 {
		t.Fatalf("snapshot row %+v", row)
	}
}

// hitServer is a real loopback HTTP server that counts the requests it
// answered: the instance's own counter.
type hitServer struct {
	*httptest.Server
	n atomic.Int64
}

func startCounting(t *testing.T, name string) *hitServer {
	c := &hitServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(c.Close)
	return c
}

// TestTransportPin: real loopback servers in two zones; a load-test run
// pinned to zone b reaches only zone b's instances (counted at the
// servers), production keeps same zone first (zone a), zone b stopped for
// real makes the pinned run fail closed while production carries on, and
// a policy change (reload) unpins.
func TestTransportPin(t *testing.T) {
	names := []string{"ta1", "ta2", "tb1", "tb2", "xa1", "xb1"}
	srv := map[string]*hitServer{}
	var eps []envtag.Endpoint
	for _, n := range names {
		srv[n] = startCounting(t, n)
		e := envtag.Endpoint{Addr: addr(srv[n].Server), Zone: string(n[1])}
		if n[0] == 'x' {
			e.Env = "proj-x"
		}
		eps = append(eps, e)
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
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: eps})
	var pol atomic.Pointer[envtag.Policy]
	p0, _ := envtag.NewPolicy(envtag.Config{Zone: "a", Pin: map[string]string{"rb": "b"}})
	pol.Store(p0)
	st := envtag.NewStats()
	tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicyFunc(pol.Load), envtag.WithStats(st))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	url := "http://" + svc + "/"
	pinned, prod, other := propagation.Mark{Run: "rb"}, propagation.Mark{}, propagation.Mark{Run: "r2"}
	send := func(m propagation.Mark, n int) (failed []error) {
		for i := 0; i < n; i++ {
			if _, err := get(t, c, url, m); err != nil {
				failed = append(failed, err)
			}
		}
		return failed
	}

	h := hits()
	if errs := send(pinned, 40); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["tb1"]+d["tb2"] != 40 || d["tb1"] == 0 || d["tb2"] == 0 {
		t.Fatalf("pinned run: servers counted %v, want 40 on zone b only, both instances", d)
	}
	// Inside the lane the env rule chose: proj-x's zone b only, never
	// trunk's zone b nor proj-x's zone a.
	h = hits()
	if errs := send(propagation.Mark{Run: "rb", Env: "proj-x"}, 20); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["xb1"] != 20 || len(d) != 1 {
		t.Fatalf("pinned run tagged proj-x: servers counted %v, want 20 on xb1", d)
	}
	h = hits()
	send(prod, 40)
	send(other, 20)
	if d := delta(h); d["ta1"]+d["ta2"] != 60 || d["ta1"] == 0 || d["ta2"] == 0 {
		t.Fatalf("production and unpinned run: servers counted %v, want 60 on zone a", d)
	}

	// tb1 stopped for real: the pinned run retries within zone b (tb2).
	srv["tb1"].Close()
	h = hits()
	if errs := send(pinned, 20); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["tb2"] != 20 || len(d) != 1 {
		t.Fatalf("pinned run with tb1 down: servers counted %v, want 20 on tb2", d)
	}

	// tb2 stopped too: zone b has no healthy instance. The pinned run is
	// refused (connection failures first, until both are ejected, then
	// PinError before anything is sent), never served by zone a.
	srv["tb2"].Close()
	h = hits()
	waitFor(t, func() bool { _, err := get(t, c, url, pinned); return errors.Is(err, envtag.ErrZonePinned) })
	refused0 := st.Zone(svc, propagation.ClassLoadTest).PinRefused
	errs := send(pinned, 20)
	if len(errs) != 20 {
		t.Fatalf("pinned run with zone b down: %d of 20 refused", len(errs))
	}
	for _, err := range errs {
		var pe *envtag.PinError
		if !errors.As(err, &pe) || pe.Zone != "b" || pe.Run != "rb" || !errors.Is(err, envtag.ErrNoLane) {
			t.Fatalf("refusal %v, want a PinError for zone b", err)
		}
	}
	if d := delta(h); len(d) != 0 {
		t.Fatalf("pinned run with zone b down reached %v", d)
	}
	if z := st.Zone(svc, propagation.ClassLoadTest); z.PinRefused-refused0 != 20 {
		t.Fatalf("pinned refusals %+v (before %d), want +20", z, refused0)
	}
	h = hits()
	if errs := send(prod, 20); len(errs) > 0 {
		t.Fatalf("production with zone b down: %v", errs[0])
	}
	if d := delta(h); d["ta1"]+d["ta2"] != 20 {
		t.Fatalf("production: servers counted %v", d)
	}

	// Reload without the pin: the run goes back to the zone rule.
	p1, _ := envtag.NewPolicy(envtag.Config{Zone: "a"})
	pol.Store(p1)
	h = hits()
	if errs := send(pinned, 10); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if d := delta(h); d["ta1"]+d["ta2"] != 10 {
		t.Fatalf("unpinned by reload: servers counted %v", d)
	}
}

func TestPoolPinPickNoAlloc(t *testing.T) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", Pin: map[string]string{"rb": "b"}})
	p := envtag.NewPool("svc", pol, []envtag.Member[string]{
		{Env: "p", Zone: "a", Item: "pa1"}, {Env: "p", Zone: "b", Item: "pb1"}, {Env: "p", Zone: "b", Item: "pb2"},
	}, envtag.PoolStats(envtag.NewStats()))
	for _, m := range []propagation.Mark{{Env: "p", Run: "rb"}, {Env: "p", Run: "r2"}, {Env: "p"}} {
		if n := testing.AllocsPerRun(100, func() { p.Pick(m) }); n != 0 {
			t.Fatalf("%+v: Pick allocates %v times", m, n)
		}
	}
}

func BenchmarkPoolPickPinned(b *testing.B) {
	pol, _ := envtag.NewPolicy(envtag.Config{Zone: "a", Pin: map[string]string{"rb": "b"}})
	p := envtag.NewPool("svc", pol, []envtag.Member[int]{
		{Env: "p", Zone: "a", Item: 1}, {Env: "p", Zone: "a", Item: 2}, {Env: "p", Zone: "b", Item: 3}, {Env: "p", Zone: "b", Item: 4},
	}, envtag.PoolStats(envtag.NewStats()))
	for _, tc := range []struct {
		name string
		m    propagation.Mark
	}{{"production", propagation.Mark{Env: "p"}}, {"unpinned-run", propagation.Mark{Env: "p", Run: "r2"}}, {"pinned-run", propagation.Mark{Env: "p", Run: "rb"}}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p.Pick(tc.m)
			}
		})
	}
}
