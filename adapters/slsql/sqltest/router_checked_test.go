package sqltest_test

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestCheckedRouter: in database mode the shadow database lives on the
// same server as production (MariaDB: another database; PostgreSQL: another
// schema reached through search_path). Marked statements naming production
// explicitly are refused on every path of the shadow pool, production rows
// and tables stay as they were, and plain marked work lands in the shadow.
func TestCheckedRouter(t *testing.T) {
	type setup struct {
		name                 string
		prodQual, shadowQual string // qualifiers of production and shadow
		prod                 *sql.DB
		connector            driver.Connector
		rw                   *sqlshadow.Rewriter
		create, drop         []string
		param                func(int) string
	}
	sfx := suffix()
	table := "orders_" + sfx
	setups := []func(t *testing.T) *setup{
		func(t *testing.T) *setup {
			s := mariadb(t)
			shadowDB := "sl_shadow_" + sfx
			cfg, err := mysqldrv.ParseDSN(s.dsnFor(shadowDB))
			if err != nil {
				t.Fatal(err)
			}
			c, err := mysqldrv.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rw, err := sqlshadow.New(mysqldialect.New(), sqlshadow.WithDatabase(shadowDB))
			if err != nil {
				t.Fatal(err)
			}
			return &setup{name: "mariadb", prodQual: "test", shadowQual: shadowDB, prod: open(t, s.driver, s.dsn), connector: c, rw: rw,
				create: []string{"CREATE DATABASE " + shadowDB, "CREATE TABLE test." + table + " (id INT PRIMARY KEY, total INT)", "CREATE TABLE " + shadowDB + "." + table + " (id INT PRIMARY KEY, total INT)", "INSERT INTO test." + table + " VALUES (1, 10)"},
				drop:   []string{"DROP TABLE IF EXISTS test." + table, "DROP DATABASE IF EXISTS " + shadowDB},
				param:  func(int) string { return "?" }}
		},
		func(t *testing.T) *setup {
			s := postgres(t)
			schema := "sl_shadow_" + sfx
			c, err := slsql.DSNConnector(stdlib.GetDefaultDriver(), s.dsn+"&search_path="+schema)
			if err != nil {
				t.Fatal(err)
			}
			rw, err := sqlshadow.New(pgdialect.New(), sqlshadow.WithDatabase(schema))
			if err != nil {
				t.Fatal(err)
			}
			return &setup{name: "postgres", prodQual: "public", shadowQual: schema, prod: open(t, s.driver, s.dsn), connector: c, rw: rw,
				create: []string{"CREATE SCHEMA " + schema, "CREATE TABLE public." + table + " (id INT PRIMARY KEY, total INT)", "CREATE TABLE " + schema + "." + table + " (id INT PRIMARY KEY, total INT)", "INSERT INTO public." + table + " VALUES (1, 10)"},
				drop:   []string{"DROP TABLE IF EXISTS public." + table, "DROP SCHEMA IF EXISTS " + schema + " CASCADE"},
				param:  func(i int) string { return fmt.Sprintf("$%d", i) }}
		},
	}
	for _, mk := range setups {
		s := mk(t)
		t.Run(s.name, func(t *testing.T) {
			defer s.prod.Close()
			for _, q := range s.create {
				if _, err := s.prod.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			defer func() {
				for _, q := range s.drop {
					s.prod.Exec(q)
				}
			}()
			r, err := slsql.NewRouter(s.name, s.prod, s.connector, s.rw)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			prodTable := s.prodQual + "." + table
			checksum := func() string {
				var n, sum int
				if err := s.prod.QueryRow("SELECT count(*), coalesce(sum(total), 0) FROM "+prodTable).Scan(&n, &sum); err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprint(n, "/", sum)
			}
			before := checksum()
			hostile := []string{
				"INSERT INTO " + prodTable + " (id, total) VALUES (2, 20)",
				"UPDATE " + prodTable + " SET total = 0",
				"DELETE FROM " + prodTable,
				"DROP TABLE " + prodTable,
				"DROP TABLE " + table,
				"TRUNCATE TABLE " + prodTable,
				"INSERT INTO " + table + " SELECT * FROM " + prodTable,
				"SELECT * FROM " + prodTable,
				"SET search_path = public",
			}
			if s.name == "mariadb" {
				hostile = append(hostile, "SELECT /*!100000 1, */ 2", "USE test", "SET @x = 1")
			}
			for _, q := range hostile {
				_, err := r.ExecContext(marked, q)
				var se *shadow.Error
				if !errors.As(err, &se) {
					t.Errorf("router %s: got %v, want a *shadow.Error", q, err)
				}
				if _, err := r.DB(marked).ExecContext(marked, q); !errors.As(err, &se) {
					t.Errorf("DB(ctx) %s: got %v, want a *shadow.Error", q, err)
				}
				tx, err := r.BeginTx(marked, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.ExecContext(bg, q); !errors.As(err, &se) {
					t.Errorf("tx %s: got %v, want a *shadow.Error", q, err)
				}
				tx.Rollback()
			}
			if after := checksum(); after != before {
				t.Fatalf("production changed: %s -> %s", before, after)
			}
			// Plain marked work, unqualified or qualified with the shadow,
			// lands in the shadow database; unmarked work in production.
			ins := fmt.Sprintf("INSERT INTO %s (id, total) VALUES (%s, %s)", table, s.param(1), s.param(2))
			if _, err := r.ExecContext(marked, ins, 5, 50); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ExecContext(marked, "INSERT INTO "+s.shadowQual+"."+table+" (id, total) VALUES (6, 60)"); err != nil {
				t.Fatal(err)
			}
			var sh int
			if err := s.prod.QueryRow("SELECT coalesce(sum(total), 0) FROM " + s.shadowQual + "." + table).Scan(&sh); err != nil || sh != 110 {
				t.Fatalf("shadow sum = %d, %v; want 110", sh, err)
			}
			if after := checksum(); after != before {
				t.Fatalf("production changed: %s -> %s", before, after)
			}
		})
	}
	if _, err := slsql.NewRouter("x", &sql.DB{}, nil, nil); !errors.Is(err, slsql.ErrNoShadowDB) {
		t.Errorf("missing shadow connector: %v", err)
	}
}
