package sqltest_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// useTestData makes a runtime with testData rules the default one for the
// test (slsql's lost-mark guard reads the default runtime).
func useTestData(t *testing.T, action string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "sqltest", TestData: shadowlane.TestDataConfig{
		Action:       action,
		Prefixes:     []string{"lt-"},
		EmailDomains: []string{"loadtest.example"},
		IDRanges:     []shadowlane.IDRange{{Min: 9_000_000_000, Max: 9_099_999_999}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	old := shadowlane.Default()
	shadowlane.SetDefault(rt)
	t.Cleanup(func() { shadowlane.SetDefault(old); rt.Close() })
	return rt
}

// TestLostMarkGuardOnServers: with testData configured, an unmarked
// statement carrying load-test data (an argument or a literal) never runs
// on production; production data runs; marked work goes to the shadow
// table; action alert lets it through and counts it. Read back with a
// plain client.
func TestLostMarkGuardOnServers(t *testing.T) {
	for _, c := range []struct {
		srv     func(*testing.T) server
		dialect sqlshadow.Dialect
	}{{mariadb, mysqldialect.New()}, {postgres, pgdialect.New()}} {
		s := c.srv(t)
		t.Run(s.name, func(t *testing.T) {
			raw := open(t, s.driver, s.dsn)
			defer raw.Close()
			users := "users_wiring_" + suffix()
			for _, ddl := range []string{
				"CREATE TABLE " + users + " (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL)",
				"CREATE TABLE " + users + "_shadow (id BIGINT PRIMARY KEY, email VARCHAR(200) NOT NULL)",
			} {
				if _, err := raw.Exec(ddl); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				raw.Exec("DROP TABLE IF EXISTS " + users)
				raw.Exec("DROP TABLE IF EXISTS " + users + "_shadow")
			})
			rw, err := sqlshadow.New(c.dialect)
			if err != nil {
				t.Fatal(err)
			}
			drv := driver.Driver(mysqldrv.MySQLDriver{})
			if s.driver == "pgx" {
				drv = stdlib.GetDefaultDriver()
			}
			conn, err := slsql.DSNConnector(drv, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			db := slsql.OpenDB(conn, rw)
			defer db.Close()
			p1, p2 := s.param(1), s.param(2)
			ins := "INSERT INTO " + users + " (id, email) VALUES (" + p1 + ", " + p2 + ")"
			count := func(table string) int {
				var n int
				if err := raw.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			rt := useTestData(t, "")
			ctx := context.Background() // the handler dropped its context: no mark
			lost := []func() error{
				func() error { _, err := db.ExecContext(ctx, ins, 1, "lt-1@shop.example"); return err },
				func() error { _, err := db.ExecContext(ctx, ins, 9_000_000_001, "a@shop.example"); return err },
				func() error { _, err := db.ExecContext(ctx, ins, 2, "b@loadtest.example"); return err },
				func() error {
					_, err := db.ExecContext(ctx, "INSERT INTO "+users+" (id, email) VALUES (3, 'c@loadtest.example')")
					return err
				},
				func() error {
					st, err := db.PrepareContext(ctx, ins)
					if err != nil {
						return err
					}
					defer st.Close()
					_, err = st.ExecContext(ctx, 4, "lt-4@shop.example")
					return err
				},
				func() error {
					rows, err := db.QueryContext(ctx, "SELECT id FROM "+users+" WHERE email = "+p1, "lt-9@shop.example")
					if err == nil {
						rows.Close()
					}
					return err
				},
			}
			for i, f := range lost {
				if err := f(); !errors.Is(err, shadow.ErrLostMark) {
					t.Errorf("lost-mark case %d: err = %v, want ErrLostMark", i, err)
				}
			}
			if n := count(users); n != 0 {
				t.Fatalf("%d load-test rows reached production", n)
			}
			if got := rt.Stats().LostMarks[c.dialect.Name()]; got != int64(len(lost)) {
				t.Fatalf("LostMarks[%s] = %d, want %d (%v)", c.dialect.Name(), got, len(lost), rt.Stats().LostMarks)
			}
			// Production data runs; marked load-test data goes to the twin.
			if _, err := db.ExecContext(ctx, ins, 10, "p@shop.example"); err != nil {
				t.Fatal(err)
			}
			marked := propagation.With(ctx, propagation.Mark{Run: "r-wiring"})
			if _, err := db.ExecContext(marked, ins, 9_000_000_010, "lt-10@loadtest.example"); err != nil {
				t.Fatal(err)
			}
			if p, sh := count(users), count(users+"_shadow"); p != 1 || sh != 1 {
				t.Fatalf("production %d rows, shadow %d; want 1 and 1", p, sh)
			}
			// alert: the leak is reported and counted, and it is real.
			alert := useTestData(t, "alert")
			if _, err := db.ExecContext(ctx, ins, 11, "lt-11@shop.example"); err != nil {
				t.Fatalf("alert: %v", err)
			}
			if p := count(users); p != 2 {
				t.Fatalf("alert: production %d rows, want 2", p)
			}
			if got := alert.Stats().LostMarks[c.dialect.Name()]; got != 1 {
				t.Fatalf("alert: LostMarks = %v", alert.Stats().LostMarks)
			}
		})
	}
}
