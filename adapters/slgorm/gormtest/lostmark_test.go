package gormtest_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/shadowlane/shadowlane"
	slgorm "github.com/shadowlane/shadowlane/adapters/slgorm"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	sqlitedialect "github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func testDataRuntime(t *testing.T, action string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "gormtest", TestData: shadowlane.TestDataConfig{
		Action:   action,
		Prefixes: []string{"lt-"},
		IDRanges: []shadowlane.IDRange{{Min: 9_000_000_000, Max: 9_099_999_999}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// plainDefault makes a runtime without testData the default one, so a
// plugin falling back to the default instead of its WithRuntime would let
// the load-test data through.
func plainDefault(t *testing.T) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	old := shadowlane.Default()
	shadowlane.SetDefault(rt)
	t.Cleanup(func() { shadowlane.SetDefault(old); rt.Close() })
	return rt
}

// TestLostMarkGuard: gorm opens its own database/sql pool, which slsql
// does not wrap unless the app (or zero-code wiring) makes it, so the
// plugin runs the lost-mark guard itself. An unmarked ORM create, a Raw
// insert with a literal, a query with a load-test argument and an update
// are refused with ErrLostMark, with and without PrepareStmt, in the
// plugin's runtime (WithRuntime), never the default one; production data
// runs and marked load-test data lands in the shadow table. Read back from
// the SQLite file.
func TestLostMarkGuard(t *testing.T) {
	def := plainDefault(t)
	for _, prepare := range []bool{false, true} {
		name := "plain"
		if prepare {
			name = "PrepareStmt"
		}
		t.Run(name, func(t *testing.T) {
			rt := testDataRuntime(t, "")
			raw, db := openWith(t, prepare, func(rw *sqlshadow.Rewriter) *slgorm.Plugin {
				return must(slgorm.New(rw, slgorm.WithRuntime(rt)))
			})
			if err := db.WithContext(bg).Create(&User{Name: "u-1"}).Error; err != nil {
				t.Fatal(err)
			}
			lost := []func() error{
				func() error { return db.WithContext(bg).Create(&User{Name: "lt-1"}).Error },
				func() error { return db.WithContext(bg).Exec("INSERT INTO users (name) VALUES ('lt-2')").Error },
				func() error { return db.WithContext(bg).Create(&Order{UserID: 1, Total: 9_000_000_001}).Error },
				func() error { var u User; return db.WithContext(bg).Where("name = ?", "lt-3").First(&u).Error },
				func() error { return db.WithContext(bg).Model(&User{ID: 1}).Update("name", "lt-4").Error },
				func() error {
					var n int64
					return db.WithContext(bg).Raw("SELECT count(*) FROM users WHERE name = ?", "lt-5").Row().Scan(&n)
				},
			}
			for i, f := range lost {
				if err := f(); !errors.Is(err, shadow.ErrLostMark) {
					t.Errorf("case %d: err = %v, want ErrLostMark", i, err)
				}
			}
			if err := db.WithContext(marked).Create(&User{Name: "lt-6"}).Error; err != nil {
				t.Fatal(err)
			}
			want(t, raw, "users", 1, 1)
			want(t, raw, "orders", 0, 0)
			var names []string
			raw.Table("users").Pluck("name", &names)
			if len(names) != 1 || names[0] != "u-1" {
				t.Fatalf("production users = %q (the update must not have run)", names)
			}
			if n := rt.Stats().LostMarks["sqlite"]; n != int64(len(lost)) {
				t.Fatalf("LostMarks = %v, want sqlite %d", rt.Stats().LostMarks, len(lost))
			}
			if n := rt.Decisions().Total("sqlite", shadow.Guard); n != int64(len(lost)) {
				t.Fatalf("%d guard decisions in the plugin's runtime, want %d", n, len(lost))
			}
			if len(def.Stats().LostMarks) != 0 || def.Decisions().Total("sqlite", shadow.Guard) != 0 {
				t.Fatalf("the default runtime counted catches: %v", def.Stats().LostMarks)
			}
		})
	}
}

// openWith is open with the plugin of mk.
func openWith(t *testing.T, prepare bool, mk func(*sqlshadow.Rewriter) *slgorm.Plugin) (raw, db *gorm.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := gorm.Open(sqlite.Open(path), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"", "_shadow"} {
		if err := raw.Table("users" + tbl).AutoMigrate(&User{}); err != nil {
			t.Fatal(err)
		}
		if err := raw.Table("orders" + tbl).AutoMigrate(&Order{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := quiet()
	cfg.PrepareStmt = prepare
	db, err = gorm.Open(sqlite.Open(path), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := sqlshadow.New(sqlitedialect.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(mk(rw)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range []*gorm.DB{raw, db} {
			if s, err := d.DB(); err == nil {
				s.Close()
			}
		}
	})
	return raw, db
}

// TestLostMarkDatabaseMode: in database mode unmarked statements go to
// production and pass the guard; marked ones go to the shadow database and
// the redirect is counted in the plugin's runtime.
func TestLostMarkDatabaseMode(t *testing.T) {
	def := plainDefault(t)
	rt := testDataRuntime(t, "")
	dir := t.TempDir()
	prod, err := gorm.Open(sqlite.Open(filepath.Join(dir, "prod.db")), quiet())
	if err != nil {
		t.Fatal(err)
	}
	shadowDB, err := gorm.Open(sqlite.Open(filepath.Join(dir, "shadow.db")), quiet())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*gorm.DB{prod, shadowDB} {
		if err := d.AutoMigrate(&User{}); err != nil {
			t.Fatal(err)
		}
	}
	// the Rewriter counts its own decisions in the same runtime
	rw, err := sqlshadow.New(sqlitedialect.New(), sqlshadow.WithDatabase("main"), sqlshadow.WithDecisions(rt.Decisions))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Use(must(slgorm.NewDatabase(shadowDB, rw, slgorm.WithRuntime(rt)))); err != nil {
		t.Fatal(err)
	}
	if err := prod.WithContext(bg).Create(&User{Name: "lt-1"}).Error; !errors.Is(err, shadow.ErrLostMark) {
		t.Fatalf("unmarked load-test create: %v", err)
	}
	if err := prod.WithContext(bg).Create(&User{Name: "u-1"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := prod.WithContext(marked).Create(&User{Name: "lt-2"}).Error; err != nil {
		t.Fatal(err)
	}
	var p, s int64
	raw, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "prod.db")), quiet())
	raw.Model(&User{}).Count(&p)
	shadowDB.Session(&gorm.Session{}).Model(&User{}).Count(&s)
	if p != 1 || s != 1 {
		t.Fatalf("production %d users, shadow %d; want 1 and 1", p, s)
	}
	if g, d := redirects(rt.Decisions()), redirects(def.Decisions()); g != 1 || d != 0 {
		t.Fatalf("redirects to the shadow database counted: plugin's runtime %d (want 1), default %d (want 0)", g, d)
	}
	if n := len(def.Decisions().Snapshot()); n != 0 {
		t.Fatalf("the default runtime counted %d decisions: %v", n, def.Decisions().Snapshot())
	}
	if rt.Stats().LostMarks["sqlite"] != 1 {
		t.Fatalf("LostMarks = %v", rt.Stats().LostMarks)
	}
}

// redirects is the plugin's count of statements sent to the shadow database.
func redirects(s *shadow.Series) int64 {
	for _, c := range s.Snapshot() {
		if c.Store == "sqlite" && c.Target == "database" && c.Decision == shadow.Redirect.String() {
			return c.N
		}
	}
	return 0
}

// TestLostMarkOverSlsqlCountedOnce: gorm over a pool slsql wraps too (what
// zero-code wiring builds: gorm.Open gets the plugin, the driver's
// sql.Open is slsql's) with testData.action alert: the statement runs and
// the catch is counted once, by the plugin, not again by slsql.
func TestLostMarkOverSlsqlCountedOnce(t *testing.T) {
	rt := testDataRuntime(t, "alert")
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, ddl := range []string{"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "CREATE TABLE users_shadow (id INTEGER PRIMARY KEY, name TEXT)"} {
		if _, err := raw.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	rw, err := sqlshadow.New(sqlitedialect.New())
	if err != nil {
		t.Fatal(err)
	}
	c, err := slsql.DSNConnector(raw.Driver(), path)
	if err != nil {
		t.Fatal(err)
	}
	pool := slsql.OpenDB(c, rw, slsql.WithRuntime(rt))
	defer pool.Close()
	db, err := gorm.Open(sqlite.Dialector{Conn: pool}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Use(must(slgorm.New(rw, slgorm.WithRuntime(rt)))); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"lt-1", "lt-2"} {
		if err := db.WithContext(bg).Create(&User{Name: n}).Error; err != nil {
			t.Fatal(err)
		}
	}
	// slsql alone (no gorm above it) still counts its own
	if _, err := pool.ExecContext(bg, "INSERT INTO users (name) VALUES (?)", "lt-3"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := raw.QueryRow("SELECT count(*) FROM users").Scan(&n); err != nil || n != 3 {
		t.Fatalf("production users = %d (%v), want 3 (alert lets them through)", n, err)
	}
	if got := rt.Stats().LostMarks["sqlite"]; got != 3 {
		t.Fatalf("LostMarks = %v, want sqlite 3 (each statement once)", rt.Stats().LostMarks)
	}
}
