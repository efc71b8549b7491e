package sqltest_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	mysqldialect "github.com/shadowlane/shadowlane/dialects/mysql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// tableModeCase is the per-server part of TestTableModeOnServers: the
// dialect and the statements whose syntax differs.
type tableModeCase struct {
	srv     func(*testing.T) server
	dialect sqlshadow.Dialect
	// upsert bumps total of an existing order by one.
	upsert string
	// joinUpdate sets orders.total from rates.v for every order with a rate.
	joinUpdate string
	// hostile statements: each must be refused, whatever it is.
	hostile []string
}

func tableModeCases() []tableModeCase {
	common := []string{
		"EXPLAIN ANALYZE DELETE FROM {orders}",
		"EXPLAIN DELETE FROM {orders}",
		"INSERT INTO {rates} (id, v) VALUES (9, 9)",
		"INSERT INTO {rates} (id, v) SELECT id, total FROM {orders}",
		"UPDATE {rates} SET v = 0",
		"DELETE FROM {rates}",
		"SELECT * FROM {rates} FOR UPDATE",
		"TRUNCATE TABLE {orders}",
		"DROP TABLE {orders}",
		"CREATE TABLE {orders}_copy AS SELECT * FROM {orders}",
		"DELETE FROM {orders}; DELETE FROM {rates}",
	}
	return []tableModeCase{
		{
			srv: mariadb, dialect: mysqldialect.New(),
			upsert:     "INSERT INTO {orders} (id, total) VALUES (?, 0) ON DUPLICATE KEY UPDATE total = {orders}.total + 1",
			joinUpdate: "UPDATE {orders} o JOIN {rates} r ON r.id = o.id SET o.total = r.v",
			hostile: append([]string{
				"REPLACE INTO {rates} (id, v) VALUES (1, 0)",
				"UPDATE {orders} o JOIN {rates} r ON r.id = o.id SET r.v = o.total",
				"DELETE r FROM {rates} r JOIN {orders} o ON o.id = r.id",
				"SELECT * FROM {orders} INTO OUTFILE '/tmp/shadowlane-leak'",
				"LOCK TABLES {rates} WRITE",
				"SET GLOBAL max_connections = 151",
			}, common...),
		},
		{
			srv: postgres, dialect: pgdialect.New(),
			upsert:     "INSERT INTO {orders} (id, total) VALUES ($1, 0) ON CONFLICT (id) DO UPDATE SET total = {orders}.total + 1",
			joinUpdate: "UPDATE {orders} SET total = r.v FROM {rates} r WHERE r.id = {orders}.id",
			hostile: append([]string{
				"EXPLAIN ANALYSE DELETE FROM {orders}",
				"EXPLAIN (ANALYZE, COSTS off) INSERT INTO {orders} (id, total) VALUES (77, 77)",
				"WITH x AS (DELETE FROM {rates} RETURNING id) SELECT * FROM x",
				"MERGE INTO {rates} r USING {orders} o ON o.id = r.id WHEN MATCHED THEN UPDATE SET v = 0",
				"COPY {orders} TO STDOUT",
				"SELECT * INTO {orders}_copy FROM {orders}",
				"SET search_path TO pg_catalog",
				"LOCK TABLE {rates}",
			}, common...),
		},
	}
}

// TestTableModeOnServers: the table-mode connector with the real dialect
// of each server (MariaDB, PostgreSQL). Marked Exec/Query/Prepare and
// transactions land in the shadow table, reading the read-through table in
// place; hostile statements are refused; row counts and sums are read back
// from the real tables.
func TestTableModeOnServers(t *testing.T) {
	for _, c := range tableModeCases() {
		s := c.srv(t)
		t.Run(s.name, func(t *testing.T) {
			raw := open(t, s.driver, s.dsn)
			defer raw.Close()
			sfx := suffix()
			orders, rates := "orders_"+sfx, "rates_"+sfx
			x := strings.NewReplacer("{orders}", orders, "{rates}", rates).Replace
			for _, ddl := range []string{
				"CREATE TABLE " + orders + " (id INT PRIMARY KEY, total INT NOT NULL)",
				"CREATE TABLE " + orders + "_shadow (id INT PRIMARY KEY, total INT NOT NULL)",
				"CREATE TABLE " + rates + " (id INT PRIMARY KEY, v INT NOT NULL)",
			} {
				if _, err := raw.Exec(ddl); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() {
				for _, n := range []string{orders, orders + "_shadow", rates, orders + "_copy"} {
					raw.Exec("DROP TABLE IF EXISTS " + n)
				}
			})
			if _, err := raw.Exec("INSERT INTO " + rates + " (id, v) VALUES (1, 10), (2, 20)"); err != nil {
				t.Fatal(err)
			}
			rw, err := sqlshadow.New(c.dialect, sqlshadow.WithReadThrough(rates))
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
			ins := x(fmt.Sprintf("INSERT INTO {orders} (id, total) VALUES (%s, %s)", p1, p2))
			exec := func(ctxName string, q string, args ...any) {
				t.Helper()
				ctx := bg
				if ctxName == "marked" {
					ctx = marked
				}
				if _, err := db.ExecContext(ctx, q, args...); err != nil {
					t.Fatalf("%s %s: %v", ctxName, q, err)
				}
			}

			exec("production", ins, 1, 1)
			exec("marked", ins, 1, 5) // same id: a different table
			exec("marked", x("INSERT INTO {orders} (id, total) SELECT id + 100, v FROM {rates}"))
			exec("marked", x(c.upsert), 1)
			exec("marked", x(c.joinUpdate))
			exec("marked", x("DELETE FROM {orders} WHERE id = "+p1), 102)
			// shadow: 1 (5, upserted to 6, then rate 1 sets 10), 101 (10)

			var n, sum int
			q := x("SELECT count(*), coalesce(sum(o.total), 0) FROM {orders} o LEFT JOIN {rates} r ON r.id = o.id")
			if err := db.QueryRowContext(marked, q).Scan(&n, &sum); err != nil || n != 2 || sum != 20 {
				t.Fatalf("marked read: %d rows, sum %d, %v; want 2, 20", n, sum, err)
			}
			if err := db.QueryRowContext(bg, q).Scan(&n, &sum); err != nil || n != 1 || sum != 1 {
				t.Fatalf("production read: %d rows, sum %d, %v; want 1, 1", n, sum, err)
			}

			// Prepared unmarked, executed marked and unmarked.
			st, err := db.PrepareContext(bg, ins)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExecContext(marked, 3, 3); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExecContext(bg, 3, 3); err != nil {
				t.Fatal(err)
			}
			st.Close()
			// Prepared marked, executed unmarked.
			st, err = db.PrepareContext(marked, ins)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExecContext(bg, 4, 4); err != nil {
				t.Fatal(err)
			}
			st.Close()
			// A transaction begun marked stays shadow; one rolled back leaves nothing.
			tx, err := db.BeginTx(marked, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(bg, ins, 5, 5); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRowContext(bg, x("SELECT count(*) FROM {orders}")).Scan(&n); err != nil || n != 4 {
				t.Fatalf("count inside marked transaction = %d, %v; want 4 (shadow)", n, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			tx, err = db.BeginTx(marked, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(bg, ins, 6, 6); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}

			before := shadow.Total(c.dialect.Name(), shadow.Block)
			for _, h := range c.hostile {
				_, err := db.ExecContext(marked, x(h))
				var se *shadow.Error
				if !errors.As(err, &se) || se.Store != c.dialect.Name() {
					t.Errorf("hostile %q: err = %v, want a *shadow.Error", x(h), err)
				}
			}
			if got := shadow.Total(c.dialect.Name(), shadow.Block) - before; got < int64(len(c.hostile)) {
				t.Errorf("blocks counted %d, want at least %d", got, len(c.hostile))
			}
			// The guard: production never touches the shadow table.
			if _, err := db.ExecContext(bg, x("DELETE FROM {orders}_shadow")); !errors.Is(err, shadow.ErrShadowFromProduction) {
				t.Fatalf("guard: %v", err)
			}

			readBack := func(q string) (int, int) {
				t.Helper()
				var n, sum int
				if err := raw.QueryRow(q).Scan(&n, &sum); err != nil {
					t.Fatal(err)
				}
				return n, sum
			}
			if n, sum := readBack(x("SELECT count(*), coalesce(sum(total), 0) FROM {orders}")); n != 3 || sum != 8 {
				t.Errorf("production orders: %d rows, sum %d; want 3 (ids 1, 3, 4), sum 8", n, sum)
			}
			if n, sum := readBack(x("SELECT count(*), coalesce(sum(total), 0) FROM {orders}_shadow")); n != 4 || sum != 28 {
				t.Errorf("shadow orders: %d rows, sum %d; want 4 (ids 1, 101, 3, 5), sum 28", n, sum)
			}
			if n, sum := readBack(x("SELECT count(*), coalesce(sum(v), 0) FROM {rates}")); n != 2 || sum != 30 {
				t.Errorf("read-through rates changed: %d rows, sum %d; want 2, 30", n, sum)
			}
			var copies int
			raw.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_name = '" + orders + "_copy'").Scan(&copies)
			if copies != 0 {
				t.Errorf("a marked statement created %s_copy", orders)
			}
		})
	}
}
