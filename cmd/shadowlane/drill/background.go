package drill

import (
	"context"
	"fmt"
	"time"
)

// background is one consumer run in a goroutine until stopped: the
// trunk ledger writer (stores.consumer) and the proj-a lane writer
// (laneDrill.lane).
type background struct {
	cancel context.CancelFunc
	done   chan error // run's result; a reader that only peeks puts it back
}

// start runs run in a goroutine, with a context that ctx's cancellation
// does not end (stop does).
func (b *background) start(ctx context.Context, run func(context.Context) error) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- run(rctx) }()
}

// stop cancels the run and waits (10s at most) for it to return its
// error; nothing when it is not running. what names it in the timeout
// error.
func (b *background) stop(what string) error {
	if b.cancel == nil {
		return nil
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		return err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not stop within 10s", what)
	}
}
