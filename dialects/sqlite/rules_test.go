package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

var marked = propagation.Mark{Run: "run-1"}

func TestRewriterRules(t *testing.T) {
	r, err := sqlshadow.New(sqlite.New(),
		sqlshadow.WithNaming(shadow.Naming{Prefix: "pt_"}),
		sqlshadow.WithTables(map[string]string{"users": "users_pt"}),
		sqlshadow.WithReadThrough("countries"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"SELECT * FROM orders JOIN users ON users.id = orders.user_id", "SELECT * FROM pt_orders JOIN users_pt ON users_pt.id = pt_orders.user_id"},
		{"SELECT * FROM pt_orders", "SELECT * FROM pt_orders"},
		{"SELECT o.id FROM orders o JOIN countries c ON c.code = o.cc", "SELECT o.id FROM pt_orders o JOIN countries c ON c.code = o.cc"},
		{"INSERT INTO orders (cc) SELECT code FROM countries", "INSERT INTO pt_orders (cc) SELECT code FROM countries"},
		{"COMMIT", "COMMIT"},
	} {
		got, err := r.Rewrite(marked, c.in)
		if err != nil || got != c.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", c.in, got, err, c.want)
		}
	}
	refused := []struct {
		in     string
		target string
		is     error
	}{
		{"UPDATE countries SET name = 'x'", "countries", shadow.ErrBlocked},
		{"DROP TABLE orders", "", shadow.ErrUnsupported},
		{"SELECT * FROM orders; DELETE FROM orders", "", shadow.ErrUnsupported},
	}
	for _, c := range refused {
		for range 2 { // second time from the cache
			_, err := r.Rewrite(marked, c.in)
			var se *shadow.Error
			if !errors.As(err, &se) || !errors.Is(err, c.is) {
				t.Fatalf("%s: err = %v, want %v", c.in, err, c.is)
			}
			if se.Store != "sqlite" || se.Mark != marked || se.Rule == "" || (c.target != "" && se.Target != c.target) {
				t.Fatalf("%s: error fields %+v", c.in, se)
			}
		}
	}
}

func TestRewriterMapOnlyFailsClosed(t *testing.T) {
	r, err := sqlshadow.New(sqlite.New(), sqlshadow.WithTables(map[string]string{"orders": "orders_pt"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Rewrite(marked, "SELECT * FROM orders"); err != nil || got != "SELECT * FROM orders_pt" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, err = r.Rewrite(marked, "SELECT * FROM orders JOIN users ON users.id = orders.uid")
	var se *shadow.Error
	if !errors.As(err, &se) || !errors.Is(err, shadow.ErrNoShadowTarget) || se.Target != "users" {
		t.Fatalf("err = %v", err)
	}
}

func TestGuard(t *testing.T) {
	r, err := sqlshadow.New(sqlite.New(), sqlshadow.WithTables(map[string]string{"legacy": "legacy_copy"}), sqlshadow.WithNaming(shadow.DefaultTable), withSeries)
	if err != nil {
		t.Fatal(err)
	}
	before := series.Total("sqlite", shadow.Guard)
	for _, q := range []string{
		"SELECT * FROM orders_shadow",
		"SELECT * FROM ORDERS_SHADOW",
		"DELETE FROM legacy_copy",
		"SELECT * FROM orders WHERE id IN (SELECT id FROM items_shadow)",
		"SELECT * FROM orders_shadow WHERE (", // unparsable and mentions the affix
		"DROP TABLE orders_shadow",            // DDL: SQLite reports no tables for it
		"EXPLAIN QUERY PLAN SELECT * FROM orders_shadow",
	} {
		_, err := r.Statement(context.Background(), q)
		var se *shadow.Error
		if !errors.As(err, &se) || !errors.Is(err, shadow.ErrShadowFromProduction) {
			t.Errorf("%q: err = %v, want ErrShadowFromProduction", q, err)
		}
	}
	if n := series.Total("sqlite", shadow.Guard) - before; n != 7 {
		t.Errorf("guard decisions counted = %d, want 7", n)
	}
	for _, q := range []string{
		"SELECT * FROM orders",
		"SELECT 'orders_shadow' AS label FROM orders", // mentions the affix in a literal only
		"SELECT * FROM orders WHERE (",                // unparsable: not our business when unmarked
	} {
		if got, err := r.Statement(context.Background(), q); err != nil || got != q {
			t.Errorf("%q: got %q, %v", q, got, err)
		}
	}
	off, _ := sqlshadow.New(sqlite.New(), sqlshadow.WithoutGuard())
	if _, err := off.Statement(context.Background(), "SELECT * FROM orders_shadow"); err != nil {
		t.Errorf("guard off: %v", err)
	}
}

func TestStatementMarked(t *testing.T) {
	r, _ := sqlshadow.New(sqlite.New(), withSeries)
	ctx := propagation.With(context.Background(), marked)
	before := series.Total("sqlite", shadow.Redirect)
	got, err := r.Statement(ctx, "SELECT * FROM orders")
	if err != nil || got != "SELECT * FROM orders_shadow" {
		t.Fatalf("got %q, %v", got, err)
	}
	if series.Total("sqlite", shadow.Redirect) == before {
		t.Fatal("redirect not counted")
	}
}

// TestCountsOnCacheHits: every call counts its decisions, from the cache
// as well as cold, per table and decision.
func TestCountsOnCacheHits(t *testing.T) {
	r, _ := sqlshadow.New(sqlite.New(), sqlshadow.WithReadThrough("rates_cnt"), withSeries)
	count := func(target string, d shadow.Decision) int64 {
		for _, c := range series.Snapshot() {
			if c.Store == "sqlite" && c.Target == target && c.Decision == d.String() {
				return c.N
			}
		}
		return 0
	}
	r0, t0, b0 := count("orders_cnt", shadow.Redirect), count("rates_cnt", shadow.ReadThrough), count("rates_cnt", shadow.Block)
	for range 5 {
		if _, err := r.Rewrite(marked, "SELECT * FROM orders_cnt JOIN rates_cnt ON rates_cnt.id = orders_cnt.rid"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Rewrite(marked, "DELETE FROM rates_cnt"); !errors.Is(err, shadow.ErrBlocked) {
			t.Fatal(err)
		}
	}
	if d := [3]int64{count("orders_cnt", shadow.Redirect) - r0, count("rates_cnt", shadow.ReadThrough) - t0, count("rates_cnt", shadow.Block) - b0}; d != [3]int64{5, 5, 5} {
		t.Fatalf("redirect, read-through, block counted %v, want 5 each", d)
	}
}

func TestCacheBounded(t *testing.T) {
	r, _ := sqlshadow.New(sqlite.New(), sqlshadow.WithCacheSize(8))
	for i := range 100 {
		q := "SELECT " + string(rune('a'+i%26)) + string(rune('a'+i/26)) + " FROM orders"
		if _, err := r.Rewrite(marked, q); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.Len(); n > 8 {
		t.Fatalf("cache holds %d entries, bound is 8", n)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, opts := range [][]sqlshadow.Option{
		{sqlshadow.WithNaming(shadow.Naming{})},
		{sqlshadow.WithTables(map[string]string{"orders": "orders"})},
		{sqlshadow.WithReadThrough("orders_shadow")},
	} {
		if _, err := sqlshadow.New(sqlite.New(), opts...); !errors.Is(err, sqlshadow.ErrConfig) {
			t.Errorf("err = %v, want ErrConfig", err)
		}
	}
	if _, err := sqlshadow.New(nil); !errors.Is(err, sqlshadow.ErrConfig) {
		t.Errorf("nil dialect: %v", err)
	}
}

func BenchmarkRewriteHit(b *testing.B) {
	r, _ := sqlshadow.New(sqlite.New())
	q := "SELECT * FROM `orders` WHERE `orders`.`id` = ? ORDER BY `orders`.`id` LIMIT 1"
	r.Rewrite(marked, q)
	b.ReportAllocs()
	for b.Loop() {
		r.Rewrite(marked, q)
	}
}

func BenchmarkGuardUnmarked(b *testing.B) {
	r, _ := sqlshadow.New(sqlite.New())
	q := "SELECT * FROM `orders` WHERE `orders`.`id` = ? ORDER BY `orders`.`id` LIMIT 1"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.Statement(ctx, q)
	}
}

// series holds the decisions these tests count: a Rewriter bound to its
// own series, as adapters bind theirs to a Runtime's (without the root
// package linked in, the default series is nil and counts nothing).
var series = shadow.NewSeries(nil)

var withSeries = sqlshadow.WithDecisions(func() *shadow.Series { return series })
