package limiter

import (
	"context"
	"sync"
	"time"
)

// Clock is the source of time for a [Limiter]. The default is the system's
// monotonic clock; tests inject a [ManualClock] with [WithClock] so every
// behaviour (refill, warm-up, queueing, breaker timeouts, metric windows) can
// be stepped deterministically, much like x/time/rate's AllowN(t, n).
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks for d or until ctx is done, returning ctx.Err() in the
	// latter case. Queued entries wait with it.
	Sleep(ctx context.Context, d time.Duration) error
}

// ManualClock is a [Clock] that moves only when told to. Sleep advances the
// clock by the requested duration and returns at once, so queueing is
// deterministic in tests. The zero value is not usable; use [NewManualClock].
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock reading start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

// Now returns the clock's current reading.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleep advances the clock by d (unless ctx is already done) and returns.
func (c *ManualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// sysSleep waits on a real timer.
func sysSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
