package sqltest_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// limitedDB opens a SQLite database through the shadowing connector and a
// limit connector on a limiter with a manual clock and the given rules.
func limitedDB(t *testing.T, rules ...limiter.Rule) (raw, db *sql.DB, clk *limiter.ManualClock, l *limiter.Limiter) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	for _, ddl := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INT)",
		"CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, total INT)",
	} {
		if _, err := raw.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	c, err := slsql.DSNConnector(raw.Driver(), path)
	if err != nil {
		t.Fatal(err)
	}
	clk = limiter.NewManualClock(time.Unix(1000, 0))
	l = limiter.New(limiter.WithClock(clk))
	if err := l.SetRules(rules); err != nil {
		t.Fatal(err)
	}
	db = slsql.OpenDB(c, rw, slsql.WithLimiter(l))
	t.Cleanup(func() { db.Close() })
	return raw, db, clk, l
}

// Load-test inserts are held to their budget; a refused statement is not
// run (the shadow table proves it); production and other kinds pass.
func TestLimitConnectorBudget(t *testing.T) {
	raw, db, clk, _ := limitedDB(t, limiter.Rule{Name: "lt-insert", Resource: "sql:INSERT", Class: limiter.ClassLoadTest, QPS: 1, Burst: 2})
	var be *limiter.BlockError
	for i := range 4 {
		_, err := db.ExecContext(marked, "INSERT INTO orders (id, total) VALUES (?, 1)", i+1)
		if i < 2 && err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if i >= 2 && !errors.As(err, &be) {
			t.Fatalf("insert %d: %v, want a *limiter.BlockError", i, err)
		}
	}
	if be.Resource != "sql:INSERT" || be.Rule != "lt-insert" || be.Class != "loadtest" || !errors.Is(be, limiter.ErrBlocked) {
		t.Errorf("block %+v", be)
	}
	// Prepared statements are admitted per execution.
	st, err := db.PrepareContext(marked, "/* app */ insert INTO orders (id, total) VALUES (?, 1)")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ExecContext(marked, 10); !errors.Is(err, limiter.ErrBlocked) {
		t.Errorf("prepared insert over budget: %v", err)
	}
	// Reads and production writes have no rule.
	var n int
	if err := db.QueryRowContext(marked, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 2 {
		t.Errorf("load-test count: %d %v, want 2 (the shadow table)", n, err)
	}
	for i := range 5 {
		if _, err := db.ExecContext(bg, "INSERT INTO orders (id, total) VALUES (?, 1)", 100+i); err != nil {
			t.Fatalf("production insert: %v", err)
		}
	}
	wantCounts(t, raw, 5, 2)
	clk.Advance(time.Second)
	if _, err := st.ExecContext(marked, 11); err != nil {
		t.Errorf("prepared insert after refill: %v", err)
	}
	wantCounts(t, raw, 5, 3)
}

// Failing statements open a breaker on their kind; while open, statements
// are refused without reaching the database.
func TestLimitConnectorBreaker(t *testing.T) {
	raw, db, clk, l := limitedDB(t, limiter.Rule{Name: "br", Resource: "sql:*", Breaker: &limiter.BreakerRule{
		Strategy: limiter.ErrorCount, Threshold: 2, MinRequests: 2, OpenFor: time.Second}})
	for range 2 {
		if _, err := db.ExecContext(bg, "UPDATE no_such_table SET x = 1"); err == nil || errors.Is(err, limiter.ErrBlocked) {
			t.Fatalf("update of a missing table: %v", err)
		}
	}
	if s, _ := l.BreakerState("sql:UPDATE", "br"); s != limiter.Open {
		t.Fatalf("breaker %v, want open", s)
	}
	if _, err := db.ExecContext(bg, "UPDATE orders SET total = 2"); !errors.Is(err, limiter.ErrCircuitOpen) {
		t.Fatalf("update while open: %v", err)
	}
	// Other kinds have breakers of their own.
	if _, err := db.ExecContext(bg, "INSERT INTO orders (id, total) VALUES (1, 1)"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := db.ExecContext(bg, "UPDATE orders SET total = 2"); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if s, _ := l.BreakerState("sql:UPDATE", "br"); s != limiter.Closed {
		t.Errorf("breaker %v after a good probe, want closed", s)
	}
	var total int
	raw.QueryRow("SELECT total FROM orders WHERE id = 1").Scan(&total)
	if total != 2 {
		t.Errorf("total %d, want 2", total)
	}
}

func TestKind(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT 1":                      "SELECT",
		"  select * from t":             "SELECT",
		"(SELECT 1) UNION (SELECT 2)":   "SELECT",
		"/* a */ -- b\n insert into t":  "INSERT",
		"# mysql comment\nUpDaTe t SET": "UPDATE",
		"WITH x AS (SELECT 1) SELECT *": "WITH",
		"delete from t":                 "DELETE",
		"VACUUM":                        "OTHER",
		"":                              "OTHER",
		"/* unterminated":               "OTHER",
		"SELECTED":                      "OTHER",
		"\u00e9select":                  "OTHER",
		"begin":                         "BEGIN",
	} {
		if got := slsql.Kind(q); got != want {
			t.Errorf("Kind(%q) = %q, want %q", q, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { slsql.Kind("/* c */ INSERT INTO t VALUES (1)") }); n != 0 {
		t.Errorf("Kind allocates %v", n)
	}
}

func FuzzKind(f *testing.F) {
	for _, s := range []string{"SELECT 1", "/* x */insert", "-- c\nupdate", "/*", "--", "#", "((((", "Wi", ""} {
		f.Add(s)
	}
	known := map[string]bool{}
	for _, k := range []string{"OTHER", "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "WITH",
		"CALL", "EXPLAIN", "SHOW", "SET", "CREATE", "ALTER", "DROP", "TRUNCATE", "BEGIN", "START", "COMMIT", "ROLLBACK", "VALUES"} {
		known[k] = true
	}
	f.Fuzz(func(t *testing.T, q string) {
		k := slsql.Kind(q)
		if !known[k] {
			t.Fatalf("Kind(%q) = %q: not a known kind (resource names must stay bounded)", q, k)
		}
	})
}
