package bustest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
)

func TestSwitch(t *testing.T) {
	var on atomic.Bool
	on.Store(true)
	sw := NewSwitch(on.Load)
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	sw.Handle(lt, "a-1")
	sw.Flip(func() { on.Store(false) })
	sw.Handle(context.Background(), "p-1") // production flows while off
	sw.Handle(lt, "stream-1")              // decided before the flip
	sw.WaitFor(t, "a-", 1)
	sw.Check(t, "stream-", 1, 3)
	if d, tot := sw.Count(""); d != 3 || tot != 3 {
		t.Errorf("count %d %d", d, tot)
	}
	sw.Handle(lt, "off-1")
	sw.Handle(lt, "stream-2")
	sw.Handle(context.Background(), "p-1")
	sp := &spy{TB: t}
	sw.Check(sp, "stream-", 1, 3)
	for _, want := range []string{"off-1 handled while load tests were off", "2 messages handled while load tests were off (at most 1", "p-1 handled 2 times", "handled 5 distinct, want 3"} {
		if !sp.has(want) {
			t.Errorf("Check did not report %q:\n%s", want, sp)
		}
	}
}

func TestSwitchRuntime(t *testing.T) {
	rt := SwitchRuntime(t)
	sw := NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	sw.Handle(lt, "a-1")
	sw.Flip(func() { rt.SetLoadTest(false, "test") })
	if on, _ := rt.LoadTestEnabled(); on {
		t.Fatal("load tests still on after SetLoadTest(false)")
	}
	sw.Handle(context.Background(), "p-1")
	sw.Check(t, "stream-", 0, 2)
}
