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
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

type server struct {
	name, driver, dsn string
	dsnFor            func(db string) string
	param             func(i int) string
}

func mariadb(t *testing.T) server {
	addr := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	testenv.Need(t, "MariaDB", addr)
	f := func(db string) string { return "root@tcp(" + addr + ")/" + db }
	return server{"mariadb", "mysql", f("test"), f, func(int) string { return "?" }}
}

func postgres(t *testing.T) server {
	addr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(t, "PostgreSQL", addr)
	f := func(db string) string { return "postgres://postgres@" + addr + "/" + db + "?sslmode=disable" }
	return server{"postgres", "pgx", f("test"), f, func(i int) string { return fmt.Sprintf("$%d", i) }}
}

func open(t *testing.T, driverName, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		testenv.Missing(t, driverName, dsn, err)
	}
	return db
}

// TestRouterDatabaseMode: marked work goes to another database on the same
// server, unmarked work stays in production; read back from both. Both
// constructors route the same way; only NewRouter inspects: a marked
// statement naming the production database is refused by it and, as
// NewUncheckedRouter documents, runs on production through the opt-out.
func TestRouterDatabaseMode(t *testing.T) {
	for _, srv := range []func(*testing.T) server{mariadb, postgres} {
		for _, checked := range []bool{true, false} {
			s := srv(t)
			name := s.name + "/checked"
			if !checked {
				name = s.name + "/unchecked"
			}
			t.Run(name, func(t *testing.T) { routerDatabaseMode(t, s, checked) })
		}
	}
	if _, err := slsql.NewUncheckedRouter("x", nil, nil); !errors.Is(err, slsql.ErrNoShadowDB) {
		t.Fatal("router without shadow pool was built")
	}
	if _, err := slsql.NewRouter("x", nil, nil, nil); !errors.Is(err, slsql.ErrNoShadowDB) {
		t.Fatal("router without shadow pool was built")
	}
	// NewRouter needs a database-mode Rewriter: a table-mode one (or none)
	// is a configuration error, never an unchecked shadow pool.
	db, _ := sql.Open("sqlite", ":memory:")
	defer db.Close()
	conn, err := slsql.DSNConnector(db.Driver(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	tableMode, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, rw := range []*sqlshadow.Rewriter{nil, tableMode} {
		if _, err := slsql.NewRouter("x", db, conn, rw); !errors.Is(err, sqlshadow.ErrConfig) {
			t.Errorf("NewRouter with rewriter %v: %v, want ErrConfig", rw, err)
		}
	}
}

func routerDatabaseMode(t *testing.T, s server, checked bool) {
	admin := open(t, s.driver, s.dsn)
	defer admin.Close()
	sfx := suffix()
	shadowName := "sl_shadow_" + sfx
	if _, err := admin.Exec("CREATE DATABASE " + shadowName); err != nil {
		t.Fatal(err)
	}
	table := "orders_" + sfx
	ddl := "CREATE TABLE " + table + " (id INT PRIMARY KEY, total INT)"
	if _, err := admin.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	prod := open(t, s.driver, s.dsn)
	shadowDB := open(t, s.driver, s.dsnFor(shadowName))
	t.Cleanup(func() {
		shadowDB.Close()
		admin.Exec("DROP TABLE " + table)
		if s.name == "postgres" {
			admin.Exec("DROP DATABASE " + shadowName + " WITH (FORCE)")
		} else {
			admin.Exec("DROP DATABASE " + shadowName)
		}
	})
	if _, err := shadowDB.Exec(ddl); err != nil {
		t.Fatal(err)
	}
	var r *slsql.Router
	var err error
	if checked {
		var rw *sqlshadow.Rewriter
		if s.name == "postgres" {
			rw, err = sqlshadow.New(pgdialect.New(), sqlshadow.WithDatabase("public"))
		} else {
			rw, err = sqlshadow.New(mysqldialect.New(), sqlshadow.WithDatabase(shadowName))
		}
		if err != nil {
			t.Fatal(err)
		}
		c, cerr := slsql.DSNConnector(prod.Driver(), s.dsnFor(shadowName))
		if cerr != nil {
			t.Fatal(cerr)
		}
		r, err = slsql.NewRouter(s.name, prod, c, rw)
	} else {
		r, err = slsql.NewUncheckedRouter(s.name, prod, shadowDB)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ins := fmt.Sprintf("INSERT INTO %s (id, total) VALUES (%s, %s)", table, s.param(1), s.param(2))
	if _, err := r.ExecContext(bg, ins, 1, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ExecContext(marked, ins, 2, 20); err != nil {
		t.Fatal(err)
	}
	// prepared unmarked, executed marked: shadow database
	st, err := r.PrepareContext(bg, ins)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExecContext(marked, 3, 30); err != nil {
		t.Fatal(err)
	}
	st.Close()
	tx, err := r.BeginTx(marked, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(bg, ins, 4, 40); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var p, sh int
	admin.QueryRow("SELECT count(*) FROM " + table).Scan(&p)
	shadowDB.QueryRow("SELECT count(*) FROM " + table).Scan(&sh)
	if p != 1 || sh != 3 {
		t.Fatalf("production rows %d, shadow rows %d; want 1 and 3", p, sh)
	}
	var total int
	if err := r.QueryRowContext(marked, "SELECT sum(total) FROM "+table).Scan(&total); err != nil || total != 90 {
		t.Fatalf("marked sum = %d, %v", total, err)
	}
	if s.name == "mariadb" {
		// The production database named explicitly by a marked statement.
		q := "INSERT INTO test." + table + " (id, total) VALUES (9, 90)"
		_, err := r.ExecContext(marked, q)
		var n int
		admin.QueryRow("SELECT count(*) FROM " + table + " WHERE id = 9").Scan(&n)
		var se *shadow.Error
		if checked && (!errors.As(err, &se) || n != 0) {
			t.Fatalf("checked router: %s: %v, %d production rows; want a *shadow.Error and none", q, err, n)
		}
		if !checked && (err != nil || n != 1) {
			t.Fatalf("unchecked router: %s: %v, %d production rows; the documented risk did not show", q, err, n)
		}
	}
}

// TestConnectorOnServers runs the table-mode connector over real network
// drivers (go-sql-driver/mysql, pgx), with statements simple enough for the
// SQLite grammar: the wrapper's prepare/exec/transaction paths are the same
// whatever the dialect.
func TestConnectorOnServers(t *testing.T) {
	for _, srv := range []func(*testing.T) server{mariadb, postgres} {
		s := srv(t)
		t.Run(s.name, func(t *testing.T) {
			raw := open(t, s.driver, s.dsn)
			defer raw.Close()
			table := "orders_" + suffix()
			for _, n := range []string{table, table + "_shadow"} {
				if _, err := raw.Exec("CREATE TABLE " + n + " (id INT PRIMARY KEY, total INT)"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { raw.Exec("DROP TABLE " + n) })
			}
			rw, err := sqlshadow.New(sqlite.New())
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
			ins := fmt.Sprintf("INSERT INTO %s (id, total) VALUES (%s, %s)", table, s.param(1), s.param(2))
			if _, err := db.ExecContext(bg, ins, 1, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(marked, ins, 2, 2); err != nil {
				t.Fatal(err)
			}
			st, err := db.PrepareContext(bg, ins)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExecContext(marked, 3, 3); err != nil {
				t.Fatal(err)
			}
			st.Close()
			tx, err := db.BeginTx(marked, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(bg, ins, 4, 4); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(bg, "DELETE FROM "+table+"_shadow"); !errors.Is(err, shadow.ErrShadowFromProduction) {
				t.Fatalf("guard: %v", err)
			}
			var p, sh int
			raw.QueryRow("SELECT count(*) FROM " + table).Scan(&p)
			raw.QueryRow("SELECT count(*) FROM " + table + "_shadow").Scan(&sh)
			if p != 1 || sh != 3 {
				t.Fatalf("production rows %d, shadow rows %d; want 1 and 3", p, sh)
			}
		})
	}
}
