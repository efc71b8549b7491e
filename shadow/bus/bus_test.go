package bus_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

func decode(hs ...string) *bus.Decoder {
	var d bus.Decoder
	for i := 0; i+1 < len(hs); i += 2 {
		d.Header(hs[i], hs[i+1])
	}
	return &d
}

func TestDecoderOneRuleForEveryBus(t *testing.T) {
	for _, tc := range []struct {
		hs   []string
		want propagation.Mark
		bad  bus.Field
	}{
		{nil, propagation.Mark{}, bus.NoField},
		{[]string{"X-Shadowlane-Run", "r1"}, propagation.Mark{Run: "r1"}, bus.NoField},
		{[]string{"X-SHADOWLANE-ENV", "proj-a"}, propagation.Mark{Env: "proj-a"}, bus.NoField},
		{[]string{"x-shadowlane-run", "r1", "X-Shadowlane-Run", "r1"}, propagation.Mark{Run: "r1"}, bus.NoField},
		{[]string{"x-shadowlane-run", "r1", "X-Shadowlane-Run", "r2"}, propagation.Mark{}, bus.RunField},
		{[]string{"X-Shadowlane-Env", "proj-a", "x-SHADOWLANE-env", "proj-b"}, propagation.Mark{}, bus.EnvField},
		{[]string{"X-Shadowlane-Run", ""}, propagation.Mark{}, bus.RunField},
		{[]string{"X-Shadowlane-Run", "bad run"}, propagation.Mark{}, bus.RunField},
		{[]string{"X-Shadowlane-Runs", "x", "trace", "y"}, propagation.Mark{}, bus.NoField},
	} {
		m, bad := decode(tc.hs...).Mark()
		if m != tc.want || bad != tc.bad {
			t.Errorf("%q: got %v %v, want %v %v", tc.hs, m, bad, tc.want, tc.bad)
		}
	}
	var d bus.Decoder
	d.Add(bus.RunField, "", false)
	if _, bad := d.Mark(); bad != bus.RunField {
		t.Error("non-string value accepted")
	}
	if bus.FieldOfBytes([]byte("x-shadowlane-ENV")) != bus.EnvField || bus.FieldOf("X-Shadowlane-Ru") != bus.NoField {
		t.Error("FieldOf")
	}
	if n := testing.AllocsPerRun(100, func() { _ = bus.FieldOfBytes([]byte("X-Shadowlane-Run")) }); n != 0 {
		t.Errorf("FieldOfBytes allocates %v", n)
	}
}

// decisions is the series the test rules count in.
var decisions = shadow.NewSeries(nil)

func rules(t *testing.T, c bus.Config) *bus.Rules {
	t.Helper()
	if c.Decisions == nil {
		c.Decisions = func() *shadow.Series { return decisions }
	}
	if c.Store == "" {
		c.Store = fmt.Sprintf("bus-test-%p", t)
	}
	c.Kind = "topic"
	if c.Naming == (shadow.Naming{}) {
		c.Naming = shadow.DefaultTopic
	}
	r, err := bus.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConsumeRule(t *testing.T) {
	var on atomic.Bool
	on.Store(true)
	var names bus.Names
	names.Add("orders")
	lanes := envtag.StaticLanes{"g": {"proj-a"}}
	trunk := rules(t, bus.Config{Names: names, Lanes: lanes, LoadTest: on.Load})
	lane := rules(t, bus.Config{Store: trunk.Config().Store, Names: names, Env: "proj-a", Lanes: lanes, LoadTest: on.Load})
	gone := rules(t, bus.Config{Store: trunk.Config().Store, Names: names, Env: "proj-b", Lanes: lanes, LoadTest: on.Load})
	for _, tc := range []struct {
		r      *bus.Rules
		source string
		hs     []string
		want   bus.Action
		run    string
		off    bool
	}{
		{trunk, "orders", nil, bus.Handle, "", false},
		{trunk, "orders", []string{"X-Shadowlane-Env", "proj-a"}, bus.Skip, "", false},
		{trunk, "orders", []string{"X-Shadowlane-Env", "proj-c"}, bus.Handle, "", false},
		{lane, "orders", []string{"X-Shadowlane-Env", "proj-a"}, bus.Handle, "", false},
		{lane, "orders", nil, bus.Skip, "", false},
		{trunk, "orders", []string{"X-Shadowlane-Run", "r1"}, bus.Refuse, "", false},                              // anomaly
		{lane, "orders", []string{"X-Shadowlane-Run", "r1", "x-shadowlane-env", "proj-a"}, bus.Skip, "r1", false}, // refused once, by the trunk
		{trunk, "orders", []string{"X-Shadowlane-Run", "r 1"}, bus.Refuse, "", false},
		{lane, "orders", []string{"X-Shadowlane-Run", "r 1"}, bus.Skip, "", false},
		{trunk, "orders_shadow", nil, bus.Handle, bus.DefaultFallbackRun, false},
		{trunk, "orders_shadow", []string{"X-Shadowlane-Run", "r1"}, bus.Handle, "r1", false},
		{trunk, "orders_shadow", []string{"X-Shadowlane-Run", "r1"}, bus.Wait, "r1", true},
		{trunk, "orders", nil, bus.Handle, "", true}, // production never waits
		{lane, "orders_shadow", []string{"X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a"}, bus.Wait, "r1", true},
		{gone, "orders", []string{"X-Shadowlane-Env", "proj-b"}, bus.Wait, "", false}, // lane left the set
	} {
		on.Store(!tc.off)
		d := tc.r.Consume("g", tc.source, decode(tc.hs...))
		if d.Action != tc.want || (d.Action != bus.Refuse && d.Mark.Run != tc.run) {
			t.Errorf("env %q %s %q off=%v: got %v %v (%v), want %v run %q", tc.r.Env(), tc.source, tc.hs, tc.off, d.Action, d.Mark, d.Err, tc.want, tc.run)
		}
		if (d.Action == bus.Refuse || d.Action == bus.Wait) && d.Err == nil {
			t.Errorf("%v without a reason", d.Action)
		}
	}
	on.Store(false)
	d := trunk.Consume("g", "orders_shadow", decode("X-Shadowlane-Run", "r1"))
	if !errors.Is(d.Err, shadow.ErrKillSwitch) || trunk.Ready("g", d) {
		t.Fatalf("kill switch wait: %v ready %v", d.Err, trunk.Ready("g", d))
	}
	on.Store(true)
	if !trunk.Ready("g", d) {
		t.Fatal("not ready after the switch came back")
	}
	// refusals are counted once: by the trunk
	st := trunk.Config().Store
	before := decisions.Total(st, shadow.Block)
	trunk.Consume("g", "orders", decode("X-Shadowlane-Run", "r 1"))
	lane.Consume("g", "orders", decode("X-Shadowlane-Run", "r 1"))
	if n := decisions.Total(st, shadow.Block) - before; n != 1 {
		t.Fatalf("one malformed message counted %d times", n)
	}
}

func TestProduceCountsOnce(t *testing.T) {
	var names bus.Names
	names.Add("orders")
	r := rules(t, bus.Config{Names: names})
	m := propagation.Mark{Run: "r1"}
	to, err := r.Produce(m, "orders")
	if err != nil || to != "orders_shadow" {
		t.Fatal(to, err)
	}
	if to2, err := r.Recheck(m, to); err != nil || to2 != to {
		t.Fatal(to2, err)
	}
	if n := decisions.Total(r.Config().Store, shadow.Redirect); n != 1 {
		t.Fatalf("one record counted %d times", n)
	}
	if _, err := r.Recheck(m, "payments"); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Fatal(err)
	}
	if _, err := r.Recheck(propagation.Mark{}, "orders_shadow"); !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Fatal(err)
	}
}

func TestNamesAndLanes(t *testing.T) {
	var n bus.Names
	n.Add("b", "a")
	if !n.Has("a") || n.Has("c") || fmt.Sprint(n.List()) != "[a b]" {
		t.Fatal("names")
	}
	n.SetAll()
	if !n.Has("c") {
		t.Fatal("all")
	}
	lane := rules(t, bus.Config{Env: "proj-a"})
	if got := lane.LaneName(lane.LaneName("q")); got != "q-proj-a" {
		t.Fatalf("lane name twice: %q", got)
	}
	if rules(t, bus.Config{}).LaneName("q") != "q" {
		t.Fatal("trunk lane name")
	}
	for _, c := range []bus.Config{
		{Store: "x", Kind: "topic"},
		{Store: "x", Kind: "topic", Naming: shadow.DefaultTopic, Env: "bad env"},
		{Store: "x", Kind: "topic", Naming: shadow.DefaultTopic, FallbackRun: "bad run"},
		{Kind: "topic", Naming: shadow.DefaultTopic},
	} {
		if _, err := bus.New(c); !errors.Is(err, bus.ErrConfig) {
			t.Errorf("%+v accepted: %v", c, err)
		}
	}
	var bad bus.Names
	bad.Add("orders_shadow")
	if _, err := bus.New(bus.Config{Store: "x", Kind: "topic", Naming: shadow.DefaultTopic, Names: bad}); !errors.Is(err, bus.ErrConfig) {
		t.Error("shadow name in the set accepted")
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add("X-Shadowlane-Run", "r1", "x-shadowlane-run", "r1")
	f.Add("X-SHADOWLANE-ENV", "proj-a", "x-shadowlane-env", "proj-b")
	f.Add("X-Shadowlane-Run", "", "trace", "x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		d := decode(k1, v1, k2, v2)
		m, bad := d.Mark()
		if bad != bus.NoField {
			if !m.IsZero() {
				t.Fatal("malformed mark returned a mark")
			}
			return
		}
		if m.Validate() != nil && !m.IsZero() {
			t.Fatalf("invalid mark %v accepted", m)
		}
		if f1, f2 := bus.FieldOf(k1), bus.FieldOf(k2); f1 != bus.NoField && f1 == f2 && v1 != v2 {
			t.Fatalf("conflict %q=%q %q=%q accepted", k1, v1, k2, v2)
		}
	})
}
