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
