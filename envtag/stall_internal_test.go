package envtag

import (
	"testing"
	"time"
)

// The lag ticker's accounting on a fake clock: ticks that wake on time add
// nothing, a late tick adds its lateness less the slack, a reading made
// while the tick is still late counts the lateness so far, readings never
// decrease, and the ticker stops after its idle time without a reading.
func TestLagTickerAccounting(t *testing.T) {
	ms := time.Millisecond
	l := newLagTicker(20*ms, 2*ms, time.Minute)
	l.running, l.due = true, 20*ms // started at 0
	read := func(now time.Duration) time.Duration {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.readLocked(now)
	}
	tick := func(now time.Duration) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.observeLocked(now)
	}
	if !tick(21*ms) || read(25*ms) != 0 { // 1 ms late: within the slack
		t.Fatalf("on-time tick counted: %v", read(25*ms))
	}
	// The next tick is due at 41 ms; the process stalls until 541 ms.
	var last time.Duration
	for _, now := range []time.Duration{100 * ms, 300 * ms, 541 * ms} {
		got := read(now)
		if want := now - 41*ms - 2*ms; got != want {
			t.Fatalf("reading at %v during the stall: %v, want %v", now, got, want)
		}
		if got < last {
			t.Fatalf("reading went back: %v after %v", got, last)
		}
		last = got
	}
	tick(541 * ms) // the tick finally runs
	if got := read(541 * ms); got != 498*ms || got < last {
		t.Fatalf("after the late tick: %v, want 498ms", got)
	}
	if got := read(550 * ms); got != 498*ms {
		t.Fatalf("next tick not due yet: %v", got)
	}
	// Unused for longer than the idle time: the ticker stops.
	if tick(541*ms + time.Minute + 20*ms) {
		t.Fatal("ticker kept running without readers")
	}
	if l.running {
		t.Fatal("ticker still marked running")
	}
}

// The real ticker starts on the first reading and never goes back.
func TestProcessStallsMonotonic(t *testing.T) {
	c := ProcessStalls()
	last := c.Stalled()
	for i := 0; i < 20; i++ {
		time.Sleep(5 * time.Millisecond)
		s := c.Stalled()
		if s < last {
			t.Fatalf("stall clock went back: %v after %v", s, last)
		}
		last = s
	}
}

// A reading costs no allocation (it is taken once per connect).
func TestStalledAllocs(t *testing.T) {
	c := ProcessStalls()
	c.Stalled()
	if n := testing.AllocsPerRun(100, func() { c.Stalled() }); n != 0 {
		t.Fatalf("%v allocs per reading", n)
	}
}
