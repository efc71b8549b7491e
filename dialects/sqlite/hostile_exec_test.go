package sqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/dialects/sqlite/internal/funcgen"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow/sqlshadowtest"
)

// bumps counts calls of the application function sl_bump, a stand-in for
// a user function with effects outside the statement.
var bumps atomic.Int64

func init() {
	msqlite.MustRegisterScalarFunction("sl_bump", 0, func(*msqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		return bumps.Add(1), nil
	})
	msqlite.MustRegisterScalarFunction("sl_bumps", 0, func(*msqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		return bumps.Load(), nil
	})
}

// TestHostileSQLite runs application functions, catalog writes and
// connection-state statements as load-test traffic on a real SQLite
// database and proves from production checksums that nothing changed.
func TestHostileSQLite(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL DEFAULT '')",
		"CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT NOT NULL DEFAULT '')",
		"INSERT INTO orders (note) VALUES ('prod')",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	state := []string{
		"SELECT count(*), coalesce(sum(id), 0), group_concat(note) FROM orders",
		"SELECT seq FROM sqlite_sequence WHERE name = 'orders'",
		"SELECT sl_bumps()",
		"PRAGMA foreign_keys", "PRAGMA query_only", "PRAGMA recursive_triggers",
		"SELECT count(*) FROM sqlite_temp_master",
	}
	u, b := shadow.ErrUnsupported, shadow.ErrBlocked
	sqlshadowtest.RunServer(t, db, rw, state, []sqlshadowtest.ServerCase{
		{SQL: "SELECT sl_bump()", Refused: u},
		{SQL: "SELECT id FROM orders WHERE id < sl_bump()", Refused: u},
		{SQL: "INSERT INTO orders (note) VALUES (sl_bump())", Refused: u},
		{SQL: "SELECT load_extension('x')", Refused: u},
		{SQL: "PRAGMA query_only = 1", Refused: u},
		{SQL: "PRAGMA foreign_keys = ON", Refused: u},
		{SQL: "CREATE TEMP TABLE tmp (id)", Refused: u},
		{SQL: "ATTACH DATABASE ':memory:' AS other", Refused: u},
		{SQL: "DELETE FROM sqlite_sequence", Refused: b},
		{SQL: "UPDATE sqlite_sequence SET seq = 100", Refused: b},
		{SQL: "INSERT INTO orders (note) VALUES ('marked')"},
		{SQL: "SELECT count(*), max(id), lower(note), random(), hex(randomblob(4)), datetime('now') FROM orders"},
		{SQL: "SELECT name FROM sqlite_master WHERE type = 'table'"},
		{SQL: "SELECT * FROM sqlite_sequence"},
	})
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders_shadow WHERE note = 'marked'").Scan(&n); err != nil || n != 1 {
		t.Errorf("shadow rows = %d, %v; want 1", n, err)
	}
}

// TestFuncsGenerated regenerates the function allow-list from the SQLite
// compiled into modernc.org/sqlite and diffs it with funcs_gen.go.
func TestFuncsGenerated(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := funcgen.Generator.Generate(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("funcs_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("funcs_gen.go is stale: run go generate in dialects/sqlite (generated %d bytes, committed %d)", len(got), len(want))
	}
}
