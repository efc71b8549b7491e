package propagation_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/shadowlane/shadowlane/propagation"
)

// Work that outlives the request keeps the mark under
// context.WithoutCancel; work started under context.Background() is
// production work.
func Example_withoutCancel() {
	reqCtx, cancel := context.WithCancel(propagation.With(context.Background(), propagation.Mark{Run: "run-7"}))
	detached := context.WithoutCancel(reqCtx)
	cancel() // the response is written, the request is over

	fmt.Println("request:", reqCtx.Err())
	fmt.Println("detached:", detached.Err(), propagation.FromContext(detached))
	fmt.Println("background load test:", propagation.IsLoadTest(context.Background()))
	// Output:
	// request: context canceled
	// detached: <nil> run=run-7
	// background load test: false
}

// A worker pool carries each job's context: the worker runs the job under
// it, so a load-test job stays load-test work on the worker's goroutine.
func Example_workerPool() {
	type job struct {
		ctx   context.Context // the request's context, detached from its cancel
		order string
	}
	jobs := make(chan job)
	results := make([]string, 2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the worker: one long-lived goroutine, no context of its own
		defer wg.Done()
		for j := range jobs {
			m := propagation.FromContext(j.ctx)
			i := 0
			if m.LoadTest() {
				i = 1
			}
			results[i] = fmt.Sprintf("%s load test=%v mark=%q", j.order, m.LoadTest(), m.String())
		}
	}()

	handle := func(ctx context.Context, order string) { // in a handler
		jobs <- job{ctx: context.WithoutCancel(ctx), order: order}
	}
	handle(context.Background(), "order-1")
	handle(propagation.With(context.Background(), propagation.Mark{Run: "run-7"}), "order-2")
	close(jobs)
	wg.Wait()
	fmt.Println(results[0])
	fmt.Println(results[1])
	// Output:
	// order-1 load test=false mark="production"
	// order-2 load test=true mark="run=run-7"
}
