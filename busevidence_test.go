package shadowlane_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// One evidence rule for every bus adapter: entries "<store>:<target>" by
// consumer, "<store> handler" and "<store> publish" errors, marked work
// only, refusals not counted, unmarked work free.
func TestBusEvidence(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	e := shadowlane.NewBusEvidence(rt, "amqp")
	ctx := marked("r-bus")
	e.Entry(ctx, "orders", "orders_shadow")
	e.Entry(context.Background(), "orders", "orders")
	e.HandlerFailed(ctx)
	e.HandlerFailed(context.Background())
	e.PublishFailed(ctx, errors.New("channel closed"))
	e.PublishFailed(ctx, nil)
	e.PublishFailed(ctx, fmt.Errorf("publish: %w", shadow.Refuse("amqp", "orders", "no twin", propagation.Mark{Run: "r-bus"}, shadow.ErrNoShadowTarget)))
	e.PublishFailed(context.Background(), errors.New("channel closed"))
	s := rt.RunStatus("r-bus")
	if !slices.Equal(s.Entries, []shadowlane.RunEntry{{Entry: "amqp:orders", Route: "orders_shadow", Marked: 1}}) {
		t.Fatalf("entries %+v", s.Entries)
	}
	want := []shadowlane.RunErrorRows{{Reason: "amqp handler", N: 1}, {Reason: "amqp publish", N: 1}}
	if !slices.Equal(s.Errors, want) {
		t.Fatalf("errors %+v", s.Errors)
	}
	bg := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		e.Entry(bg, "orders", "orders")
		e.HandlerFailed(bg)
		e.PublishFailed(bg, context.Canceled)
	}); n != 0 {
		t.Errorf("production work allocates %v", n)
	}
}
