package envtag

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestConnectGuardLateTimer: the grace timer's function runs on its own
// goroutine and, on a busy machine, may run only after the connect it
// guards completed. It must then leave the attempt alone: abandoning it
// would report a connection failure (nothing sent) for a request that
// may already have been sent. While the connect is still in progress it
// abandons the attempt with the connect-grace error.
func TestConnectGuardLateTimer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		steps   func(g *connectGuard)
		abandon bool
	}{
		{"connect in progress", func(g *connectGuard) { g.start("tcp", g.addr) }, true},
		{"connect done before the timer ran", func(g *connectGuard) { g.start("tcp", g.addr); g.done("tcp", g.addr, nil) }, false},
		{"one of two dual-stack connects done", func(g *connectGuard) {
			g.start("tcp", g.addr)
			g.start("tcp", g.addr)
			g.done("tcp", g.addr, nil)
		}, true},
		{"response received", func(g *connectGuard) { g.start("tcp", g.addr); g.stop() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			g := &connectGuard{cancel: cancel, grace: DefaultConnectGrace, addr: "127.0.0.1:1"}
			tc.steps(g)
			g.mu.Lock() // the real timer must not fire during the test
			if g.timer != nil {
				g.timer.Stop()
			}
			g.t0 = g.t0.Add(-2 * g.grace) // the grace is up
			g.mu.Unlock()
			g.expire()
			cause := context.Cause(ctx)
			if got := errors.Is(cause, errConnectGrace); got != tc.abandon {
				t.Fatalf("abandoned=%v (cause %v), want %v", got, cause, tc.abandon)
			}
			if tc.abandon && (!isConnFailure(cause) || !errors.Is(cause, ErrNoLane)) {
				t.Errorf("cause %v: want a connection failure wrapping ErrNoLane", cause)
			}
		})
	}
}

// stepStalls is a StallClock that reads step more at every reading.
type stepStalls struct{ step, total time.Duration }

func (s *stepStalls) Stalled() time.Duration { s.total += s.step; return s.total }

// The timer ran after the grace, but the process was stalled meanwhile:
// the guard sets its timer again for the stall instead of abandoning the
// connect; with no stall it abandons it.
func TestConnectGuardStretchesByStall(t *testing.T) {
	for _, step := range []time.Duration{time.Hour, 0} {
		ctx, cancel := context.WithCancelCause(context.Background())
		g := &connectGuard{cancel: cancel, grace: DefaultConnectGrace, addr: "127.0.0.1:1", stalls: &stepStalls{step: step}}
		g.start("tcp", g.addr)
		g.mu.Lock()
		g.timer.Stop()
		g.t0 = g.t0.Add(-2 * g.grace) // the grace is up
		g.mu.Unlock()
		g.expire()
		abandoned := errors.Is(context.Cause(ctx), errConnectGrace)
		if abandoned != (step == 0) {
			t.Fatalf("stall %v per reading: abandoned=%v", step, abandoned)
		}
		g.stop()
		cancel(nil)
	}
}
