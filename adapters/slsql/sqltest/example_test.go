package sqltest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	msqlite "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane"
	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func Example_openDB() {
	dir, _ := os.MkdirTemp("", "slsql")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "shop.db")
	raw, _ := sql.Open("sqlite", path)
	defer raw.Close()
	raw.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY); CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY)")

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "shop"}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	rw, _ := sqlshadow.New(sqlite.New()) // suffix _shadow, guard on
	base, _ := slsql.DSNConnector(raw.Driver(), path)
	db := slsql.OpenDB(base, rw, slsql.WithRuntime(rt))
	defer db.Close()

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	db.ExecContext(loadTest, "INSERT INTO orders DEFAULT VALUES")
	db.ExecContext(context.Background(), "INSERT INTO orders DEFAULT VALUES")
	_, err = db.ExecContext(loadTest, "DROP TABLE orders")
	fmt.Println(errors.Is(err, shadow.ErrUnsupported))
	_, err = db.ExecContext(context.Background(), "DELETE FROM orders_shadow")
	fmt.Println(errors.Is(err, shadow.ErrShadowFromProduction))

	var prod, shadowRows int
	raw.QueryRow("SELECT count(*) FROM orders").Scan(&prod)
	raw.QueryRow("SELECT count(*) FROM orders_shadow").Scan(&shadowRows)
	fmt.Println(prod, shadowRows)
	// Output:
	// true
	// true
	// 1 1
}

// The driver's own connection for production work (here SQLite's backup
// API); load-test work is refused.
func Example_raw() {
	dir, _ := os.MkdirTemp("", "slsql")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "shop.db")
	raw, _ := sql.Open("sqlite", path)
	defer raw.Close()
	raw.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY)")

	rw, _ := sqlshadow.New(sqlite.New())
	base, _ := slsql.DSNConnector(raw.Driver(), path)
	db := slsql.OpenDB(base, rw)
	defer db.Close()
	conn, _ := db.Conn(context.Background())
	defer conn.Close()

	backup := func(driverConn any) error {
		b, err := driverConn.(interface {
			NewBackup(string) (*msqlite.Backup, error)
		}).NewBackup(filepath.Join(dir, "backup.db"))
		if err != nil {
			return err
		}
		if _, err := b.Step(-1); err != nil {
			return err
		}
		return b.Finish()
	}
	fmt.Println(slsql.Raw(context.Background(), conn, backup))
	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	err := slsql.Raw(loadTest, conn, backup)
	fmt.Println(errors.Is(err, shadow.ErrBlocked))
	// Output:
	// <nil>
	// true
}
