package sqltest_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
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

// The connector counts the errors of marked statements in the run's
// evidence, by reason, on each real server: a duplicate key (the
// server's code), a missing shadow table, a commit that fails; successful
// statements (on MariaDB the driver answers driver.ErrSkip to a statement
// with arguments, then database/sql prepares it) and production errors
// count none.
func TestRunErrorsOnServers(t *testing.T) {
	cases := []struct {
		name    string
		open    func(t *testing.T) (*sql.DB, driver.Connector, sqlshadow.Dialect, func(int) string)
		dupCode string
	}{
		{"sqlite", func(t *testing.T) (*sql.DB, driver.Connector, sqlshadow.Dialect, func(int) string) {
			path := filepath.Join(t.TempDir(), "ev.db")
			raw, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := slsql.DSNConnector(raw.Driver(), path)
			if err != nil {
				t.Fatal(err)
			}
			return raw, c, sqlite.New(), func(int) string { return "?" }
		}, "sql error"},
		{"mariadb", func(t *testing.T) (*sql.DB, driver.Connector, sqlshadow.Dialect, func(int) string) {
			s := mariadb(t)
			raw := open(t, s.driver, s.dsn)
			c, err := slsql.DSNConnector(mysqldrv.MySQLDriver{}, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			return raw, c, mysqldialect.New(), s.param
		}, "sql mysql 1062"},
		{"postgres", func(t *testing.T) (*sql.DB, driver.Connector, sqlshadow.Dialect, func(int) string) {
			s := postgres(t)
			raw := open(t, s.driver, s.dsn)
			c, err := slsql.DSNConnector(stdlib.GetDefaultDriver(), s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			return raw, c, pgdialect.New(), s.param
		}, "sql 23505"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, base, dialect, param := tc.open(t)
			defer raw.Close()
			orders := "evidence12_orders_" + suffix()
			for _, ddl := range []string{
				"CREATE TABLE " + orders + " (id INT PRIMARY KEY, v INT NOT NULL)",
				"CREATE TABLE " + orders + "_shadow (id INT PRIMARY KEY, v INT NOT NULL)",
			} {
				if _, err := raw.Exec(ddl); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				raw.Exec("DROP TABLE IF EXISTS " + orders)
				raw.Exec("DROP TABLE IF EXISTS " + orders + "_shadow")
			})
			rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"}})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			rw, err := sqlshadow.New(dialect, sqlshadow.WithDecisions(rt.Decisions))
			if err != nil {
				t.Fatal(err)
			}
			db := slsql.OpenDB(base, rw)
			defer db.Close()
			bg := context.Background()
			run := propagation.With(bg, propagation.Mark{Run: "sqlerr-r1"})
			ins := fmt.Sprintf("INSERT INTO %s (id, v) VALUES (%s, %s)", orders, param(1), param(2))
			for i := range 3 {
				if _, err := db.ExecContext(run, ins, i+1, 1); err != nil {
					t.Fatal(err)
				}
			}
			dups := 0
			for range 2 {
				if _, err := db.ExecContext(run, ins, 1, 2); err == nil {
					t.Fatal("duplicate key accepted")
				}
				dups++
			}
			// A prepared statement: the same key, through the statement path.
			st, err := db.PrepareContext(run, ins)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExecContext(run, 2, 2); err == nil {
				t.Fatal("duplicate key accepted")
			}
			st.Close()
			dups++
			// A marked transaction whose statement fails, then a commit.
			tx, err := db.BeginTx(run, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(run, ins, 3, 3); err == nil {
				t.Fatal("duplicate key accepted in a transaction")
			}
			dups++
			tx.Rollback()
			// The shadow table disappears: a setup error, counted as such.
			if _, err := raw.Exec("DROP TABLE " + orders + "_shadow"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(run, ins, 9, 9); !errors.Is(err, shadow.ErrNoShadowTarget) {
				t.Fatalf("missing shadow table: %v", err)
			}
			// Production: errors of its own, never counted in a run.
			for range 2 {
				db.ExecContext(bg, ins, 1, 1)
			}
			if _, err := db.ExecContext(bg, ins, 1, 1); err == nil {
				t.Fatal("production duplicate accepted")
			}

			s := rt.RunStatus("sqlerr-r1")
			want := []shadowlane.RunErrorRows{{Reason: "sql no shadow table", N: 1}, {Reason: tc.dupCode, N: int64(dups)}}
			slices.SortFunc(want, func(a, b shadowlane.RunErrorRows) int { return strings.Compare(a.Reason, b.Reason) })
			if !slices.Equal(s.Errors, want) {
				t.Fatalf("errors %+v, want %+v", s.Errors, want)
			}
			if got := rt.Runs(); len(got) != 1 {
				t.Fatalf("runs %q: production errors made a run", got)
			}
		})
	}
}
