package shadow_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

func TestNaming(t *testing.T) {
	for _, tc := range []struct {
		n         shadow.Naming
		in, out   string
		isShadow  string
		notShadow string
	}{
		{shadow.DefaultTable, "orders", "orders_shadow", "x_shadow", "orders"},
		{shadow.DefaultKey, "user:1", "shadow:user:1", "shadow:", "user:shadow:"},
		{shadow.Naming{Prefix: "pt_", Suffix: "_t"}, "a", "pt_a_t", "pt__t", "pt_a"},
	} {
		if got := tc.n.Shadow(tc.in); got != tc.out {
			t.Errorf("%+v.Shadow(%q) = %q", tc.n, tc.in, got)
		}
		if p, ok := tc.n.Production(tc.out); !ok || p != tc.in {
			t.Errorf("%+v.Production(%q) = %q %v", tc.n, tc.out, p, ok)
		}
		if !tc.n.IsShadow(tc.isShadow) || tc.n.IsShadow(tc.notShadow) {
			t.Errorf("%+v IsShadow wrong for %q/%q", tc.n, tc.isShadow, tc.notShadow)
		}
	}
	if err := (shadow.Naming{}).Validate(); !errors.Is(err, shadow.ErrBadNaming) {
		t.Errorf("empty naming accepted: %v", err)
	}
	if (shadow.Naming{}).IsShadow("x") {
		t.Error("empty naming calls everything shadow")
	}
}

func TestErrorAndCounters(t *testing.T) {
	err := error(shadow.Refuse("mysql", "orders", "no shadow table for orders", propagation.Mark{Run: "r1"}, shadow.ErrNoShadowTarget))
	if !errors.Is(err, shadow.ErrNoShadowTarget) || !strings.Contains(err.Error(), `mysql "orders"`) || !strings.Contains(err.Error(), "run=r1") {
		t.Fatalf("error: %v", err)
	}
	store := fmt.Sprintf("test-%p", t)
	type runRow struct {
		run, target, to string
		d               shadow.Decision
		n               int64
	}
	var runs []runRow
	s := shadow.NewSeries(func(run, _, target, to string, d shadow.Decision, n int64) {
		runs = append(runs, runRow{run, target, to, d, n})
	})
	s.Record("", store, "orders", shadow.Redirect)
	c := s.Counter(store, "orders", shadow.Redirect)
	c.Inc()
	s.Add("r1", store, "orders", "orders_shadow", shadow.Block, 3)
	if s.Total(store, shadow.Redirect) != 2 || s.Total(store, shadow.Block) != 3 {
		t.Fatalf("totals %d %d", s.Total(store, shadow.Redirect), s.Total(store, shadow.Block))
	}
	if len(runs) != 1 || runs[0] != (runRow{"r1", "orders", "orders_shadow", shadow.Block, 3}) {
		t.Fatalf("per-run decisions %+v", runs)
	}
	if other := shadow.NewSeries(nil); other.Total(store, shadow.Block) != 0 || len(other.Snapshot()) != 0 {
		t.Fatal("two series share counters")
	}
	var none *shadow.Series
	none.Record("r1", store, "orders", shadow.Block) // a nil series counts nothing
	none.Counter(store, "orders", shadow.Block).Inc()
	if n := testing.AllocsPerRun(100, c.Inc); n != 0 {
		t.Fatalf("Inc allocates %v", n)
	}
	found := false
	for _, row := range s.Snapshot() {
		if row.Store == store && row.Target == "orders" && row.Decision == "block" && row.N == 3 {
			found = true
		}
	}
	if !found {
		t.Fatal("snapshot misses the block row")
	}
}
