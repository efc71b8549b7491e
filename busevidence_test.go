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
	"github.com/shadowlane/shadowlane/shadow/bus"
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

// BindBus: rules built from the config follow the runtime's kill switch
// at each call and count in its decision series.
func TestBindBus(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var c bus.Config
	shadowlane.BindBus(rt, &c)
	if !c.LoadTest() || c.Decisions() != rt.Decisions() {
		t.Fatal("bound config does not follow the runtime")
	}
	rt.SetLoadTest(false, "test")
	if c.LoadTest() {
		t.Fatal("kill switch off, LoadTest still true")
	}
	rt.SetLoadTest(true, "test")
	if !c.LoadTest() {
		t.Fatal("kill switch on again, LoadTest false")
	}
	var d bus.Config
	shadowlane.BindBus(nil, &d)
	if d.Decisions() != shadowlane.Default().Decisions() {
		t.Fatal("nil runtime: not the default runtime's decisions")
	}
}
