package sqltest_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func Example_newLimitConnector() {
	dir, _ := os.MkdirTemp("", "slsql-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "shop.db")
	raw, _ := sql.Open("sqlite", path)
	defer raw.Close()
	raw.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
	raw.Exec("CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY)")

	l := limiter.New() // or rt.Limiter(), with rules from the "limits:" config
	l.SetRules([]limiter.Rule{{Resource: "sql:INSERT", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1}})
	rw, _ := sqlshadow.New(sqlite.New())
	base, _ := slsql.DSNConnector(raw.Driver(), path)
	db := slsql.OpenDB(base, rw, slsql.WithLimiter(l))
	defer db.Close()

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "drill-1"})
	_, err := db.ExecContext(loadTest, "INSERT INTO orders (id) VALUES (1)")
	fmt.Println(err)
	_, err = db.ExecContext(loadTest, "INSERT INTO orders (id) VALUES (2)")
	var be *limiter.BlockError
	if errors.As(err, &be) {
		fmt.Println("refused:", be.Resource, be.Reason)
	}
	_, err = db.ExecContext(context.Background(), "INSERT INTO orders (id) VALUES (3)")
	fmt.Println(err)
	// Output:
	// <nil>
	// refused: sql:INSERT qps
	// <nil>
}
