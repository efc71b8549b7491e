package slsql

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/shadowlane/shadowlane/limiter"
)

type nopConn struct{ driver.Conn }

func (nopConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

type nopConnector struct{}

func (nopConnector) Connect(context.Context) (driver.Conn, error) { return nopConn{}, nil }
func (nopConnector) Driver() driver.Driver                        { return nil }

// An admitted statement adds no allocation to the driver's.
func TestLimitConnAllocs(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "sql:*", QPS: 1e9, Concurrency: 1000}}); err != nil {
		t.Fatal(err)
	}
	c, err := NewConnector(nopConnector{}, nil, WithLimiter(l))
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := c.Connect(context.Background())
	ex := cn.(driver.ExecerContext)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { ex.ExecContext(ctx, "INSERT INTO t VALUES (1)", nil) }); n != 0 {
		t.Errorf("%v allocs per admitted statement, want 0", n)
	}
}

type nopStmt struct{ driver.Stmt }

func (nopStmt) ExecContext(context.Context, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}
func (nopStmt) Close() error { return nil }

func (nopConn) Prepare(string) (driver.Stmt, error) { return nopStmt{}, nil }

// An admitted execution of a prepared statement adds no allocation to the
// driver's either.
func TestLimitStmtAllocs(t *testing.T) {
	l := limiter.New()
	if err := l.SetRules([]limiter.Rule{{Resource: "sql:*", QPS: 1e9, Concurrency: 1000}}); err != nil {
		t.Fatal(err)
	}
	c, err := NewConnector(nopConnector{}, nil, WithLimiter(l))
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := c.Connect(context.Background())
	ctx := context.Background()
	st, err := cn.(driver.ConnPrepareContext).PrepareContext(ctx, "INSERT INTO t VALUES (1)")
	if err != nil {
		t.Fatal(err)
	}
	ex := st.(driver.StmtExecContext)
	if _, err := ex.ExecContext(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { ex.ExecContext(ctx, nil) }); n != 0 {
		t.Errorf("%v allocs per admitted statement execution, want 0", n)
	}
}
