package envtag

import (
	"context"
	"errors"
	"testing"
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
