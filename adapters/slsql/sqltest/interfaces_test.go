//lint:file-ignore SA1019 the deprecated driver interfaces (Execer, Queryer, ColumnConverter) are the ones a wrapper must not lose

package sqltest_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// optional is one optional database/sql/driver interface: whether a value
// has it, and whether the wrapper of a value that has it does what
// database/sql needs (the wrapper may expose the context-aware successor of
// a deprecated interface).
type optional struct {
	name    string
	base    func(any) bool
	wrapper func(any) bool
}

func has[I any](v any) bool { _, ok := v.(I); return ok }

func either[A, B any](v any) bool { return has[A](v) || has[B](v) }

var connInterfaces = []optional{
	{"Pinger", has[driver.Pinger], has[driver.Pinger]},
	{"ExecerContext or Execer", either[driver.ExecerContext, driver.Execer], has[driver.ExecerContext]},
	{"QueryerContext or Queryer", either[driver.QueryerContext, driver.Queryer], has[driver.QueryerContext]},
	{"ConnPrepareContext", has[driver.ConnPrepareContext], has[driver.ConnPrepareContext]},
	{"ConnBeginTx", has[driver.ConnBeginTx], has[driver.ConnBeginTx]},
	{"SessionResetter", has[driver.SessionResetter], has[driver.SessionResetter]},
	{"Validator", has[driver.Validator], has[driver.Validator]},
	{"NamedValueChecker", has[driver.NamedValueChecker], has[driver.NamedValueChecker]},
}

var stmtInterfaces = []optional{
	{"StmtExecContext", has[driver.StmtExecContext], has[driver.StmtExecContext]},
	{"StmtQueryContext", has[driver.StmtQueryContext], has[driver.StmtQueryContext]},
	{"NamedValueChecker or ColumnConverter", either[driver.NamedValueChecker, driver.ColumnConverter], has[driver.NamedValueChecker]},
}

// TestWrapperKeepsDriverInterfaces: for each real driver, the connection
// and the prepared statement of slsql's wrapper have every optional
// interface the driver's own have. A missing one sends database/sql down a
// slower path (no ExecerContext: prepare, execute, close; no
// SessionResetter or Validator: connections not checked when reused).
func TestWrapperKeepsDriverInterfaces(t *testing.T) {
	drivers := []struct {
		name string
		conn func(t *testing.T) driver.Connector
	}{
		{"sqlite", func(t *testing.T) driver.Connector {
			db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "i.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			c, err := slsql.DSNConnector(db.Driver(), filepath.Join(t.TempDir(), "i.db"))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"pgx", func(t *testing.T) driver.Connector {
			c, err := slsql.DSNConnector(stdlib.GetDefaultDriver(), postgres(t).dsn)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"mysql", func(t *testing.T) driver.Connector {
			c, err := slsql.DSNConnector(&mysql.MySQLDriver{}, mariadb(t).dsn)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			c := d.conn(t)
			w, err := slsql.NewConnector(c, rw)
			if err != nil {
				t.Fatal(err)
			}
			base, wrapped := connect(t, c), connect(t, w)
			same(t, "conn", connInterfaces, base, wrapped)
			same(t, "stmt", stmtInterfaces, prepare(t, base), prepare(t, wrapped))
		})
	}
}

func connect(t *testing.T, c driver.Connector) driver.Conn {
	t.Helper()
	cn, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

func prepare(t *testing.T, c driver.Conn) driver.Stmt {
	t.Helper()
	st, err := c.(driver.ConnPrepareContext).PrepareContext(context.Background(), "SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func same(t *testing.T, what string, list []optional, base, wrapped any) {
	t.Helper()
	n := 0
	for _, o := range list {
		if !o.base(base) {
			continue
		}
		n++
		if !o.wrapper(wrapped) {
			t.Errorf("the driver's %s %T has %s, the wrapper's %T has not", what, base, o.name, wrapped)
		}
	}
	if n == 0 {
		t.Fatalf("the driver's %s %T has none of the optional interfaces: the check checks nothing", what, base)
	}
}

// TestLegacyDriverNotPrepared: a driver with only the pre-context Execer
// and Queryer runs Exec and Query directly under database/sql; through
// slsql it must too (before: the wrapper answered driver.ErrSkip and
// database/sql prepared, ran and closed a statement for each call), and
// marked statements on that path are rewritten.
func TestLegacyDriverNotPrepared(t *testing.T) {
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, wrap := range []bool{false, true} {
		lc := &legacyConnector{}
		var db *sql.DB
		if wrap {
			db = slsql.OpenDB(lc, rw)
		} else {
			db = sql.OpenDB(lc)
		}
		if _, err := db.ExecContext(bg, "UPDATE orders SET total = ? WHERE id = ?", 3, 42); err != nil {
			t.Fatal(err)
		}
		var text string
		if err := db.QueryRowContext(bg, "SELECT total FROM orders WHERE id = ?", 42).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if lc.prepares != 0 || lc.execs != 1 || lc.queries != 1 {
			t.Errorf("wrapped=%v: %d prepares, %d direct execs, %d direct queries; want 0, 1, 1", wrap, lc.prepares, lc.execs, lc.queries)
		}
		if text != "SELECT total FROM orders WHERE id = ?" {
			t.Errorf("wrapped=%v: unmarked query sent as %q", wrap, text)
		}
		if wrap {
			if err := db.QueryRowContext(marked, "SELECT total FROM orders WHERE id = ?", 42).Scan(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, "orders_shadow") || lc.prepares != 0 {
				t.Errorf("marked query sent as %q after %d prepares; want it on orders_shadow, unprepared", text, lc.prepares)
			}
			if _, err := db.ExecContext(bg, "UPDATE orders SET total = @t WHERE id = 42", sql.Named("t", 3)); err == nil {
				t.Error("a named parameter reached a driver without named parameters")
			}
		}
		db.Close()
	}
}

// legacyConnector opens connections of a driver written before the
// context interfaces: driver.Conn with Execer and Queryer, nothing else.
// It counts what database/sql asks of them (one connection at a time in
// this test). A query answers one row: the text it was sent.
type legacyConnector struct{ prepares, execs, queries int }

func (l *legacyConnector) Connect(context.Context) (driver.Conn, error) { return legacyConn{l}, nil }
func (l *legacyConnector) Driver() driver.Driver                        { return legacyDriver{l} }

type legacyDriver struct{ l *legacyConnector }

func (d legacyDriver) Open(string) (driver.Conn, error) { return legacyConn(d), nil }

type legacyConn struct{ l *legacyConnector }

func (c legacyConn) Prepare(q string) (driver.Stmt, error) {
	c.l.prepares++
	return legacyStmt{c, q}, nil
}
func (c legacyConn) Close() error { return nil }
func (c legacyConn) Begin() (driver.Tx, error) {
	return nil, errors.New("legacy driver: no transactions")
}
func (c legacyConn) Exec(string, []driver.Value) (driver.Result, error) {
	c.l.execs++
	return driver.RowsAffected(1), nil
}
func (c legacyConn) Query(q string, _ []driver.Value) (driver.Rows, error) {
	c.l.queries++
	return &legacyRows{text: q}, nil
}

type legacyStmt struct {
	c legacyConn
	q string
}

func (s legacyStmt) Close() error                               { return nil }
func (s legacyStmt) NumInput() int                              { return -1 }
func (s legacyStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(1), nil }
func (s legacyStmt) Query([]driver.Value) (driver.Rows, error)  { return &legacyRows{text: s.q}, nil }

type legacyRows struct {
	text string
	done bool
}

func (r *legacyRows) Columns() []string { return []string{"text"} }
func (r *legacyRows) Close() error      { return nil }
func (r *legacyRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.text
	return nil
}
