package sqltest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Database mode with checks: marked work runs on the shadow database as
// written, but a marked statement naming another database is refused
// before it reaches the server.
func Example_newRouter() {
	dir, _ := os.MkdirTemp("", "slsql")
	defer os.RemoveAll(dir)
	prodPath, shadowPath := filepath.Join(dir, "shop.db"), filepath.Join(dir, "shop_shadow.db")
	for _, p := range []string{prodPath, shadowPath} {
		db, _ := sql.Open("sqlite", p)
		db.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
		db.Close()
	}
	prod, _ := sql.Open("sqlite", prodPath)
	shadowConn, _ := slsql.DSNConnector(prod.Driver(), shadowPath)
	rw, _ := sqlshadow.New(sqlite.New(), sqlshadow.WithDatabase("main"))
	r, err := slsql.NewRouter("sqlite", prod, shadowConn, rw)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	r.ExecContext(loadTest, "INSERT INTO orders DEFAULT VALUES")
	r.ExecContext(context.Background(), "INSERT INTO orders DEFAULT VALUES")
	_, err = r.ExecContext(loadTest, "DELETE FROM prod.orders")
	fmt.Println(errors.Is(err, shadow.ErrBlocked))
	_, err = r.ExecContext(loadTest, "SELECT my_udf()")
	fmt.Println(errors.Is(err, shadow.ErrUnsupported))

	var p, s int
	r.QueryRowContext(context.Background(), "SELECT count(*) FROM orders").Scan(&p)
	r.QueryRowContext(loadTest, "SELECT count(*) FROM orders").Scan(&s)
	fmt.Println(p, s)
	// Output:
	// true
	// true
	// 1 1
}

// MapError turns the server's "no such table" for a shadow table into a
// typed refusal that says how to create it.
func Example_mapError() {
	rw, _ := sqlshadow.New(sqlite.New())
	err := slsql.MapError(rw, propagation.Mark{Run: "run-1"}, errors.New("SQL logic error: no such table: orders_shadow (1)"))
	var se *shadow.Error
	fmt.Println(errors.As(err, &se), errors.Is(err, shadow.ErrNoShadowTarget), se.Target)
	// Output:
	// true true orders_shadow
}
