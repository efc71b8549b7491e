package bus

import (
	"context"
	"sync"
)

// Runs are a consumer's goroutines (one per consumer group it joins): the
// first to fail cancels the others' context, with its error as the cause,
// and is the error [Runs.Wait] returns.
type Runs struct {
	wg     sync.WaitGroup
	once   sync.Once
	first  error
	cancel context.CancelCauseFunc
}

// NewRuns returns Runs and the context they share, derived from ctx.
func NewRuns(ctx context.Context) (*Runs, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &Runs{cancel: cancel}, ctx
}

// Go runs f on its own goroutine; an error it returns is a failure.
func (r *Runs) Go(f func() error) {
	r.wg.Go(func() {
		if err := f(); err != nil {
			r.Fail(err)
		}
	})
}

// Fail records err (the first one wins) and cancels the shared context.
func (r *Runs) Fail(err error) {
	r.once.Do(func() { r.first = err })
	r.cancel(err)
}

// Wait waits for every goroutine, releases the shared context, and
// returns the first failure (nil when there was none). It may be called
// again (a deferred call on early returns).
func (r *Runs) Wait() error {
	r.wg.Wait()
	r.cancel(nil)
	return r.first
}
