package sqltest_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/shadowlane/shadowlane"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestWithRuntimeTwoRuntimes: two Runtimes in one process, each wrapper
// bound to its own with WithRuntime. The lost-mark guard reads the rules
// of its wrapper's runtime and counts there; Raw's blocks and a Router's
// redirects count in that runtime's series; the default runtime (and the
// other runtime) see none of it. Read back from the SQLite files.
func TestWithRuntimeTwoRuntimes(t *testing.T) {
	newRT := func(service string, td shadowlane.TestDataConfig) *shadowlane.Runtime {
		rt, err := shadowlane.New(shadowlane.Config{Service: service, TestData: td}, shadowlane.WithoutConfigFile())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Close() })
		return rt
	}
	guarded := newRT("guarded", shadowlane.TestDataConfig{Prefixes: []string{"lt-"}})
	plain := newRT("plain", shadowlane.TestDataConfig{})
	// the default runtime refuses everything that looks like an id, so a
	// wrapper falling back to it would show
	def := newRT("default", shadowlane.TestDataConfig{Prefixes: []string{"lt-", "u-"}})
	old := shadowlane.Default()
	shadowlane.SetDefault(def)
	t.Cleanup(func() { shadowlane.SetDefault(old) })

	open := func(rt *shadowlane.Runtime) (raw, db *sql.DB) {
		path := filepath.Join(t.TempDir(), "shop.db")
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		for _, ddl := range []string{"CREATE TABLE users (id TEXT PRIMARY KEY)", "CREATE TABLE users_shadow (id TEXT PRIMARY KEY)"} {
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
		db = slsql.OpenDB(c, rw, slsql.WithRuntime(rt))
		t.Cleanup(func() { db.Close() })
		return raw, db
	}
	rawG, dbG := open(guarded)
	rawP, dbP := open(plain)

	for _, id := range []string{"lt-1", "u-1"} {
		_, err := dbG.ExecContext(bg, "INSERT INTO users (id) VALUES (?)", id)
		if want := id == "lt-1"; errors.Is(err, shadow.ErrLostMark) != want {
			t.Errorf("guarded, %s: err = %v (want a lost-mark refusal: %v)", id, err, want)
		}
		if _, err := dbP.ExecContext(bg, "INSERT INTO users (id) VALUES (?)", id); err != nil {
			t.Errorf("plain runtime, %s: %v", id, err)
		}
	}
	if g, p := count(t, rawG, "users"), count(t, rawP, "users"); g != 1 || p != 2 {
		t.Fatalf("production rows: guarded %d (want 1), plain %d (want 2)", g, p)
	}
	if n := guarded.Stats().LostMarks["sqlite"]; n != 1 {
		t.Fatalf("guarded LostMarks = %v, want sqlite 1", guarded.Stats().LostMarks)
	}
	if n := guarded.Decisions().Total("sqlite", shadow.Guard); n != 1 {
		t.Fatalf("guarded runtime's series: %d guard decisions, want 1", n)
	}
	for name, rt := range map[string]*shadowlane.Runtime{"plain": plain, "default": def} {
		if len(rt.Stats().LostMarks) != 0 || rt.Decisions().Total("sqlite", shadow.Guard) != 0 {
			t.Fatalf("%s runtime counted a catch: %v", name, rt.Stats().LostMarks)
		}
	}

	// Raw refuses marked work and counts the block in its wrapper's runtime
	conn, err := dbP.Conn(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := slsql.Raw(marked, conn, func(any) error { return nil }); !errors.Is(err, shadow.ErrBlocked) {
		t.Fatalf("Raw, marked: %v", err)
	}
	if p, d := plain.Decisions().Total("sqlite", shadow.Block), def.Decisions().Total("sqlite", shadow.Block); p != 1 || d != 0 {
		t.Fatalf("Raw's block counted: plain %d (want 1), default %d (want 0)", p, d)
	}

	// a Router counts its redirects in its runtime
	r, err := slsql.NewUncheckedRouter("shopdb", rawG, rawP, slsql.WithRuntime(guarded))
	if err != nil {
		t.Fatal(err)
	}
	if r.DB(marked) != rawP {
		t.Fatal("marked work not sent to the shadow pool")
	}
	if g, d := guarded.Decisions().Total("shopdb", shadow.Redirect), def.Decisions().Total("shopdb", shadow.Redirect); g != 1 || d != 0 {
		t.Fatalf("Router's redirect counted: guarded %d (want 1), default %d (want 0)", g, d)
	}
}
