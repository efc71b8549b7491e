package limiter

import (
	"testing"
	"time"
)

// TestCoarseClock checks that the coarse clock never runs ahead of the
// precise one, lags it by little while read, and that its ticker stops
// once nobody reads it.
func TestCoarseClock(t *testing.T) {
	var c coarseClock
	var worst int64
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		got := c.read()
		now := nanotime()
		if got > now {
			t.Fatalf("coarse clock ahead of the precise one by %v", time.Duration(got-now))
		}
		worst = max(worst, now-got)
		time.Sleep(50 * time.Microsecond)
	}
	// One tick plus scheduling delay; generous for a loaded CI machine.
	if worst > int64(500*time.Millisecond) {
		t.Fatalf("coarse clock lagged by %v", time.Duration(worst))
	}
	t.Logf("worst lag %v", time.Duration(worst))
	if !c.running.Load() {
		t.Fatal("ticker not running while read")
	}
	// The ticker stops coarseIdle after the last read by its own clock; 60 s
	// leaves room for a starved goroutine on a loaded machine and still
	// catches a ticker that never stops.
	stop := time.Now().Add(60 * time.Second)
	for c.running.Load() {
		if time.Now().After(stop) {
			t.Fatal("ticker still running 60s after the last read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Reading again restarts it and returns a fresh reading.
	before := nanotime()
	if got := c.read(); got < before {
		t.Fatalf("reading after an idle stop is stale by %v", time.Duration(before-got))
	}
	if !c.running.Load() {
		t.Fatal("ticker not restarted by a read")
	}
}

// TestPreciseWhenTight checks which rules read the precise clock.
func TestPreciseWhenTight(t *testing.T) {
	for _, c := range []struct {
		r    Rule
		want bool
	}{
		{Rule{Resource: "a", QPS: 1000}, false},                           // tau 100 ms
		{Rule{Resource: "a", QPS: 1000, Burst: 1}, true},                  // tau 1 ms
		{Rule{Resource: "a", QPS: 5}, false},                              // tau 200 ms
		{Rule{Resource: "a", QPS: 1000, MaxWait: time.Millisecond}, true}, // pacing
		{Rule{Resource: "a", QPS: 1000, LoadTestShare: 0.1}, true},        // load-test tau 10 ms
		{Rule{Resource: "a", Concurrency: 3}, false},                      // no rate check
	} {
		l := New()
		if err := l.SetRules([]Rule{c.r}); err != nil {
			t.Fatal(err)
		}
		if got := l.Resource("a").set.Load().precise; got != c.want {
			t.Errorf("%+v: precise = %v, want %v", c.r, got, c.want)
		}
	}
}
