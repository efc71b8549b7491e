package bustest

import (
	"errors"
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
}
