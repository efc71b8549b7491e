package sqltest_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestMissingShadowTable: a marked statement whose shadow table does not
// exist fails with a *shadow.Error wrapping ErrNoShadowTarget that names
// the table and how to create it, on every server; an unmarked statement on
// a missing table keeps the driver's own error.
func TestMissingShadowTable(t *testing.T) {
	type backend struct {
		name string
		open func(t *testing.T, table string) (*sql.DB, func())
	}
	backends := []backend{
		{"sqlite", func(t *testing.T, table string) (*sql.DB, func()) {
			path := filepath.Join(t.TempDir(), "e.db")
			raw, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec("CREATE TABLE " + table + " (id INT)"); err != nil {
				t.Fatal(err)
			}
			c, err := slsql.DSNConnector(raw.Driver(), path)
			if err != nil {
				t.Fatal(err)
			}
			rw, _ := sqlshadow.New(sqlite.New())
			return slsql.OpenDB(c, rw), func() { raw.Close() }
		}},
		{"mariadb", func(t *testing.T, table string) (*sql.DB, func()) {
			s := mariadb(t)
			admin := open(t, s.driver, s.dsn)
			if _, err := admin.Exec("CREATE TABLE " + table + " (id INT)"); err != nil {
				t.Fatal(err)
			}
			cfg, err := mysqldrv.ParseDSN(s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			c, err := mysqldrv.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rw, _ := sqlshadow.New(mysqldialect.New())
			return slsql.OpenDB(c, rw), func() { admin.Exec("DROP TABLE " + table); admin.Close() }
		}},
		{"postgres", func(t *testing.T, table string) (*sql.DB, func()) {
			s := postgres(t)
			admin := open(t, s.driver, s.dsn)
			if _, err := admin.Exec("CREATE TABLE " + table + " (id INT)"); err != nil {
				t.Fatal(err)
			}
			c, err := slsql.DSNConnector(stdlib.GetDefaultDriver(), s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			rw, _ := sqlshadow.New(pgdialect.New())
			return slsql.OpenDB(c, rw), func() { admin.Exec("DROP TABLE " + table); admin.Close() }
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			table := "nosh_" + suffix()
			db, cleanup := b.open(t, table)
			defer cleanup()
			defer db.Close()
			for _, q := range []string{"SELECT id FROM " + table, "INSERT INTO " + table + " (id) VALUES (1)"} {
				_, err := db.ExecContext(marked, q)
				var se *shadow.Error
				if !errors.As(err, &se) || !errors.Is(err, shadow.ErrNoShadowTarget) {
					t.Fatalf("%s: got %v, want a *shadow.Error wrapping ErrNoShadowTarget", q, err)
				}
				if !strings.HasSuffix(se.Target, table+"_shadow") || !strings.Contains(se.Rule, "CREATE TABLE "+table+"_shadow") || se.Mark.Run == "" {
					t.Errorf("%s: refusal does not name the shadow table and how to create it: %+v", q, se)
				}
				rows, err := db.QueryContext(marked, q)
				if err == nil {
					rows.Close()
				}
				if !errors.Is(err, shadow.ErrNoShadowTarget) {
					t.Errorf("QueryContext %s: %v", q, err)
				}
			}
			// Unmarked: the driver's own error, untouched.
			_, err := db.ExecContext(bg, "SELECT id FROM "+table+"_missing")
			var se *shadow.Error
			if err == nil || errors.As(err, &se) {
				t.Errorf("unmarked missing table: got %v, want the driver's error", err)
			}
		})
	}
}
