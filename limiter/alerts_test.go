package limiter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

func TestAlertsStartAndStop(t *testing.T) {
	clk := limiter.NewManualClock(t0)
	got := make(chan limiter.Alert, 10)
	l := limiter.New(limiter.WithClock(clk), limiter.WithAlertQuiet(time.Second),
		limiter.WithAlertFunc(func(a limiter.Alert) { got <- a }))
	if err := l.SetRules([]limiter.Rule{{Name: "one", Resource: "r", QPS: 1, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	res := l.Resource("r")
	tok, err := res.Entry(prod)
	if err != nil {
		t.Fatal(err)
	}
	tok.Exit()
	for range 3 {
		if _, err := res.Entry(lt); !errors.Is(err, limiter.ErrBlocked) {
			t.Fatalf("want a block, got %v", err)
		}
	}
	select {
	case a := <-got:
		if !a.Blocking || a.Rule != "one" || a.Resource != "r" || a.Reason != limiter.ReasonQPS || a.Class != "loadtest" || !a.At.Equal(t0) {
			t.Fatalf("start alert %+v", a)
		}
	default:
		t.Fatal("no start alert after the first refusal")
	}
	if b := l.Blocking(); len(b) != 1 || b[0].Rule != "one" {
		t.Fatalf("Blocking() = %+v", b)
	}
	// Still within the quiet period: no stop alert even after real time passes.
	clk.Advance(500 * time.Millisecond)
	select {
	case a := <-got:
		t.Fatalf("early alert %+v", a)
	case <-time.After(600 * time.Millisecond):
	}
	clk.Advance(600 * time.Millisecond)
	select {
	case a := <-got:
		if a.Blocking || a.Blocked != 3 || a.Rule != "one" {
			t.Fatalf("stop alert %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no stop alert after the quiet period")
	}
	if b := l.Blocking(); len(b) != 0 {
		t.Fatalf("still blocking: %+v", b)
	}
	// A new episode starts a new alert.
	if _, err := res.Entry(prod); err != nil {
		t.Fatal(err) // refilled after 1.1 s
	}
	if _, err := res.Entry(prod); err == nil {
		t.Fatal("want a block")
	}
	if a := <-got; !a.Blocking || a.Class != "production" {
		t.Fatalf("second start alert %+v", a)
	}
}
