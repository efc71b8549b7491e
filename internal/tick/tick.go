package tick

import (
	"context"
	"time"
)

// Every calls f every interval until ctx is done or f returns false. The
// first call is one interval after Every starts.
func Every(ctx context.Context, interval time.Duration, f func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f() {
			return
		}
	}
}
