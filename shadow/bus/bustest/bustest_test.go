package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
)

func TestLedgerCheck(t *testing.T) {
	l := NewLedger()
	if l.Attempt("a") != 1 || l.Attempt("a") != 2 || l.Attempts("a") != 2 {
		t.Fatal("attempts")
	}
	m := propagation.Mark{Env: "proj-a"}
	l.Handle("a", "lane", m)
	l.Handle("b", "trunk", m)
	l.Handle("b", "trunk", m)
	l.Refuse("x", errors.New("bad"))
	dups, first := l.Check(t, []string{"a", "b"}, "lane|trunk", "", "proj-a")
	if dups != 1 || first["lane"] != 1 || first["trunk"] != 1 || l.Count("trunk") != 2 || l.Total() != 3 {
		t.Errorf("dups %d, first %v, trunk %d, total %d", dups, first, l.Count("trunk"), l.Total())
	}
	if l.Ids() != 2 || l.RefusedIds() != 1 || len(l.Refused("x")) != 1 || len(l.Handled("b")) != 2 {
		t.Error("ids")
	}
	l.WaitIDs(t, "all", []string{"a", "b", "x"})
	l.WaitRefused(t, "x")
	l.RefusedOnce(t, nil, "x")
	bad := errors.New("bad")
	l.Refuse("y", fmt.Errorf("wrapped: %w", bad))
	l.RefusedOnce(t, bad, "y")
	l.Handle("z", "lane", m)
	l.Refuse("z", bad)
	l.Refuse("x", bad)
	sp := &spy{TB: t}
	l.RefusedOnce(sp, bad, "a", "x", "y", "z")
	for _, want := range []string{"a: refused [], handled [{By:lane", "x: refused [bad bad]", "z: refused [bad], handled [{By:lane"} {
		if !sp.has(want) {
			t.Errorf("RefusedOnce did not report %q:\n%s", want, sp)
		}
	}
	if strings.Contains("\n"+sp.String(), "\ny:") {
		t.Errorf("RefusedOnce reported y:\n%s", sp)
	}
}

func TestLedgerTry(t *testing.T) {
	l := NewLedger()
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	flaky := func(id string) bool { return strings.HasSuffix(id, "7") }
	for i := range 3 {
		if err := l.Try(ctx, "trunk", "X-P-0", flaky); err == nil {
			t.Fatalf("poison handled on attempt %d", i+1)
		}
	}
	if err := l.Try(ctx, "trunk", "P-7", flaky); err == nil {
		t.Fatal("flaky id handled on its first attempt")
	}
	for _, id := range []string{"P-7", "P-1"} {
		if err := l.Try(ctx, "trunk", id, flaky); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if l.Attempts("trunk/X-P-0") != 3 || l.Attempts("trunk/P-7") != 2 || l.Attempts("trunk/P-1") != 1 || len(l.Handled("X-P-0")) != 0 {
		t.Errorf("attempts %d %d %d, poison handled %v", l.Attempts("trunk/X-P-0"), l.Attempts("trunk/P-7"), l.Attempts("trunk/P-1"), l.Handled("X-P-0"))
	}
	if dups, _ := l.Check(t, []string{"P-7", "P-1"}, "trunk", "r1", ""); dups != 0 {
		t.Errorf("%d duplicates", dups)
	}
}
