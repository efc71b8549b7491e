package bus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// The first failure cancels the other runs (with it as the cause) and is
// what Wait returns; without one Wait returns nil.
func TestRuns(t *testing.T) {
	boom := errors.New("boom")
	runs, ctx := bus.NewRuns(context.Background())
	runs.Go(func() error {
		<-ctx.Done()
		return errors.New("later") // not the first
	})
	runs.Go(func() error { return boom })
	if err := runs.Wait(); err != boom || !errors.Is(context.Cause(ctx), boom) {
		t.Fatalf("Wait %v, cause %v", err, context.Cause(ctx))
	}
	if err := runs.Wait(); err != boom {
		t.Fatalf("second Wait %v", err)
	}
	runs, ctx = bus.NewRuns(context.Background())
	runs.Go(func() error { return nil })
	if err := runs.Wait(); err != nil || ctx.Err() == nil {
		t.Fatalf("no failure: %v, context %v", err, ctx.Err())
	}
}
