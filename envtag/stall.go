package envtag

import (
	"sync"
	"time"
)

// StallClock measures how long this process was kept from running when it
// wanted to run: scheduler latency on a starved machine, garbage
// collection pauses, a stopped or throttled process. The connect grace
// ([Config.ConnectGrace]) stretches by the stall observed while a connect
// was waited for, so that a process that could not run does not take its
// own slowness for a dead instance (the HTTP [Transport] and the gRPC
// balancer in adapters/slgrpc/envbalancer ask [ProcessStalls] unless
// given another clock, e.g. [WithStallClock]).
type StallClock interface {
	// Stalled returns the total stall observed so far. It never
	// decreases; the stall during an interval is the difference of the
	// readings at its ends.
	Stalled() time.Duration
}

// ProcessStalls returns the process-wide [StallClock]: a lag ticker, a
// goroutine that asks to wake every 20 ms and adds up how late it woke
// (less 2 ms of timer slack). Lateness that has not yet been observed by
// the ticker (it is itself still waiting to run) is included in each
// reading. The ticker starts on the first reading and stops after a
// minute without one; while stopped it sees nothing, so a grace longer
// than a minute may miss a stall early in its window.
func ProcessStalls() StallClock { return processStalls }

var processStalls = newLagTicker(20*time.Millisecond, 2*time.Millisecond, time.Minute)

// lagTicker implements ProcessStalls. Its accounting (observe, read) takes
// the time as an argument, so that tests drive it with a fake clock.
type lagTicker struct {
	period, slack, idle time.Duration
	epoch               time.Time // monotonic origin of the nanosecond times below

	mu      sync.Mutex
	total   time.Duration // lateness observed by ticks so far
	due     time.Duration // when the next tick is due (since epoch)
	lastUse time.Duration // the last reading
	running bool
}

func newLagTicker(period, slack, idle time.Duration) *lagTicker {
	return &lagTicker{period: period, slack: slack, idle: idle, epoch: time.Now()}
}

func (l *lagTicker) Stalled() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Since(l.epoch) // under the lock: readings and ticks are ordered
	if !l.running {
		l.running = true
		l.due = now + l.period
		go l.loop()
	}
	return l.readLocked(now)
}

// readLocked is the total at now: the ticks' lateness plus what the
// pending tick is already late by (the same amount its observe will add,
// or less, so readings never decrease).
func (l *lagTicker) readLocked(now time.Duration) time.Duration {
	l.lastUse = now
	if late := now - l.due - l.slack; late > 0 {
		return l.total + late
	}
	return l.total
}

// observeLocked records a tick that woke at now; it reports false when
// the ticker has been unused for its idle time and stops.
func (l *lagTicker) observeLocked(now time.Duration) bool {
	if late := now - l.due - l.slack; late > 0 {
		l.total += late
	}
	if now-l.lastUse > l.idle {
		l.running = false
		return false
	}
	l.due = now + l.period
	return true
}

func (l *lagTicker) loop() {
	for {
		time.Sleep(l.period)
		l.mu.Lock()
		more := l.observeLocked(time.Since(l.epoch))
		l.mu.Unlock()
		if !more {
			return
		}
	}
}
