package drill

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Deadlines. The gateway gives every request a deadline (Options.Timeout)
// that travels with it (the gRPC deadline to the order service, the
// contexts of every store call); the drill's client waits a grace period
// longer, so a request the shop gave up on is answered 504 rather than
// left without an answer. The order service reports when each call ended
// and the drill checks that none outlived its deadline by more than a
// margin taken from the latency it observed.

// withDeadline gives every request to h a deadline timeout from now.
func withDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// clientGrace is how much longer than the shop's deadline the drill's
// client waits for an answer.
func clientGrace(timeout time.Duration) time.Duration { return max(time.Second, timeout/2) }

// deadlineLog collects, per order-service call, whether it carried a
// deadline and by how much it ended after it.
type deadlineLog struct {
	mu         sync.Mutex
	n          int
	noDeadline int
	over       []time.Duration // for calls that ended after their deadline
	worst      string          // id of the worst overrun
}

func (d *deadlineLog) finished(ctx context.Context, id string, _ time.Time) {
	end := time.Now()
	dl, ok := ctx.Deadline()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if !ok {
		d.noDeadline++
		return
	}
	if over := end.Sub(dl); over > 0 {
		if len(d.over) == 0 || over > slices.Max(d.over) {
			d.worst = id
		}
		d.over = append(d.over, over)
	}
}

// invariants: every call carried a deadline, and none outlived it by more
// than margin.
func (d *deadlineLog) invariants(margin time.Duration, add func(string, int, int, string)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	late := 0
	var worst time.Duration
	for _, o := range d.over {
		worst = max(worst, o)
		if o > margin {
			late++
		}
	}
	add("deadlines: order-service calls without the caller's deadline", 0, d.noDeadline, fmt.Sprintf("%d calls", d.n))
	add(fmt.Sprintf("deadlines: order-service calls that outlived their deadline by more than %s (2x the observed median, at least 1s)", margin.Round(time.Millisecond)), 0, late,
		fmt.Sprintf("%d of %d calls ended after their deadline, worst by %s (%s)", len(d.over), d.n, worst.Round(time.Millisecond), d.worst))
}
