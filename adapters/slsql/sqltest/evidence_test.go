package sqltest_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/shadowlane/shadowlane"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// database/sql on SQLite: the rewriter bound to a runtime counts each
// statement of a run in that run's evidence, with the shadow table it went
// to; two runs are kept apart and production statements leave none.
func TestRunEvidenceSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rw, err := sqlshadow.New(sqlite.New(), sqlshadow.WithDecisions(rt.Decisions))
	if err != nil {
		t.Fatal(err)
	}
	base, err := slsql.DSNConnector(raw.Driver(), path)
	if err != nil {
		t.Fatal(err)
	}
	db := slsql.OpenDB(base, rw)
	defer db.Close()

	bg := context.Background()
	r1 := propagation.With(bg, propagation.Mark{Run: "sql-r1"})
	r2 := propagation.With(bg, propagation.Mark{Run: "sql-r2"})
	for range 4 {
		if _, err := db.ExecContext(r1, "INSERT INTO orders (v) VALUES ('load')"); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRowContext(r1, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 4 {
		t.Fatalf("shadow count %d %v", n, err)
	}
	if _, err := db.ExecContext(r1, "DROP TABLE orders"); err == nil {
		t.Fatal("DDL under a mark went through")
	}
	if _, err := db.ExecContext(r2, "INSERT INTO orders (v) VALUES ('other run')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(bg, "INSERT INTO orders (v) VALUES ('production')"); err != nil {
		t.Fatal(err)
	}

	s1, s2 := rt.RunStatus("sql-r1"), rt.RunStatus("sql-r2")
	want1 := map[string]int64{"orders|redirect|orders_shadow": 5}
	got := func(s shadowlane.RunStatus) map[string]int64 {
		m := map[string]int64{}
		for _, d := range s.Decisions {
			if d.Decision == "block" {
				m["block"] += d.N
				continue
			}
			m[d.Target+"|"+d.Decision+"|"+d.To] += d.N
		}
		return m
	}
	g1 := got(s1)
	if g1["orders|redirect|orders_shadow"] != want1["orders|redirect|orders_shadow"] || g1["block"] != 1 {
		t.Fatalf("run 1: %+v", s1.Decisions)
	}
	if g2 := got(s2); len(g2) != 1 || g2["orders|redirect|orders_shadow"] != 1 {
		t.Fatalf("run 2: %+v", s2.Decisions)
	}
	if len(rt.Runs()) != 2 {
		t.Fatalf("runs %q", rt.Runs())
	}
	if rt.Decisions().Total("sqlite", shadow.Redirect) != 6 {
		t.Fatalf("total redirects %d", rt.Decisions().Total("sqlite", shadow.Redirect))
	}
}
