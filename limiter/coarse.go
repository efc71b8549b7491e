package limiter

import (
	"sync/atomic"
	"time"
)

// coarseTick is the resolution of the coarse clock.
const coarseTick = time.Millisecond

// coarseIdle is how long without a reader stops the ticker. It is a time,
// not a count of ticks: a starved ticker receives far fewer ticks than
// wall time would give it, and must still stop.
const coarseIdle = int64(time.Second)

// coarseTolerance: a rate check whose burst tolerance is below this reads
// the precise clock, because a coarse reading that lags by a few ticks
// (a starved ticker) would cost it admissions.
const coarseTolerance = int64(50 * time.Millisecond)

// coarseClock is a process-wide monotonic clock read with one atomic load.
// A goroutine refreshes it every coarseTick while the hot path uses it and
// stops after coarseIdle without a reader, so an idle process
// wakes no one. Readings never run ahead of the real clock; they lag it by
// at most one tick plus the ticker's scheduling delay.
//
// Where the lag is harmless:
//   - rate checks (GCRA) with a burst tolerance of at least
//     coarseTolerance: a lagging clock only makes a check stricter for the
//     moment and the long-run rate is exact (see [Rule.QPS]);
//   - latency: Entry and Exit both read this clock, so differences are
//     quantised to the tick but unbiased in the mean;
//   - metric windows, breaker windows and timeouts, system protection.
//
// This replaces two vDSO (or, in many VMs, syscall) clock reads per
// Entry+Exit with two loads of one read-mostly cache line.
type coarseClock struct {
	now     atomic.Int64 // nanotime() at the last tick or wake
	used    atomic.Bool  // read since the last tick
	running atomic.Bool  // the ticker goroutine is alive
	_       [40]byte     // keep writers of neighbouring variables off this line
}

var coarse coarseClock

// read returns the coarse time, in nanotime units.
func (c *coarseClock) read() int64 {
	if c.used.Load() {
		return c.now.Load()
	}
	return c.wake()
}

// wake is the first read after a tick (or after an idle stop): it reads the
// precise clock, marks the clock used and starts the ticker if needed.
func (c *coarseClock) wake() int64 {
	n := c.advance(nanotime())
	c.used.Store(true)
	if !c.running.Load() && c.running.CompareAndSwap(false, true) {
		go c.run()
	}
	return n
}

// advance moves now forward to n (never back) and returns the new reading.
func (c *coarseClock) advance(n int64) int64 {
	for {
		old := c.now.Load()
		if old >= n {
			return old
		}
		if c.now.CompareAndSwap(old, n) {
			return n
		}
	}
}

func (c *coarseClock) run() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	lastUsed := nanotime()
	for range t.C {
		n := c.advance(nanotime())
		if c.used.Swap(false) {
			lastUsed = n
			continue
		}
		if n-lastUsed < coarseIdle {
			continue
		}
		c.running.Store(false)
		// A reader that set used before our Store saw running true and
		// started nobody: carry on for it, unless a new ticker won.
		if !c.used.Load() || !c.running.CompareAndSwap(false, true) {
			return
		}
		lastUsed = n
	}
}
