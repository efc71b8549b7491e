package exitlimit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/exitlimit"
	"github.com/shadowlane/shadowlane/limiter"
)

func TestExit(t *testing.T) {
	l := limiter.New()
	var judged []error
	failure := func(err error) bool { judged = append(judged, err); return err != nil }
	e := exitlimit.New(l, nil, "kafka:", 2, nil, nil, failure)
	if e.Names().Limiter() != l {
		t.Fatal("not on the limiter given")
	}
	a := e.Resource("a")
	if e.Resource("a") != a {
		t.Fatal("handle of a known key not cached")
	}
	e.Resource("b")
	if e.Resource("c") != e.Resource("d") {
		t.Fatal("keys beyond the bound do not share kafka:_other")
	}
	tok, err := a.Entry(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	e.Done(tok, boom)
	if len(judged) != 1 || judged[0] != boom {
		t.Fatalf("failure rule saw %v", judged)
	}
	if n := testing.AllocsPerRun(100, func() {
		tok, _ := e.Resource("a").Entry(context.Background())
		e.Done(tok, nil)
	}); n != 0 {
		t.Errorf("admitting a known key allocates %v", n)
	}

	rt, err := shadowlane.New(shadowlane.Config{Service: "bus20-exit"}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	def := func(error) bool { return true }
	e2 := exitlimit.New(nil, rt, "redis:", 8, nil, nil, def)
	if e2.Names().Limiter() != rt.Limiter() {
		t.Fatal("not on the runtime's limiter")
	}
}
