package slsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow"
)

// Statement kinds: the resource of a statement is "sql:<KIND>", the
// statement's first keyword, or "sql:OTHER".
var kinds = [...]string{"OTHER", "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "WITH",
	"CALL", "EXPLAIN", "SHOW", "SET", "CREATE", "ALTER", "DROP", "TRUNCATE", "BEGIN", "START", "COMMIT", "ROLLBACK", "VALUES"}

// Kind returns the kind of a statement for its limiter resource: its
// first keyword in upper case when it is one of SELECT, INSERT, UPDATE,
// DELETE, REPLACE, MERGE, WITH, CALL, EXPLAIN, SHOW, SET, CREATE, ALTER,
// DROP, TRUNCATE, BEGIN, START, COMMIT, ROLLBACK or VALUES, else "OTHER".
// Leading spaces, parentheses and comments are skipped. It reads only the
// first word and does not allocate.
func Kind(query string) string { return kinds[kindOf(query)] }

func kindOf(q string) int {
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ';':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i += 2
			for i+1 < len(q) && !(q[i] == '*' && q[i+1] == '/') {
				i++
			}
			i += 2
		default:
			j := i
			for j < len(q) && (q[j]|0x20 >= 'a' && q[j]|0x20 <= 'z') {
				j++
			}
			word := q[i:j]
			for k := 1; k < len(kinds); k++ {
				if equalFoldASCII(word, kinds[k]) {
					return k
				}
			}
			return 0
		}
	}
	return 0
}

func equalFoldASCII(a, upper string) bool {
	if len(a) != len(upper) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

type limitConfig struct {
	rt      *shadowlane.Runtime
	failure func(error) bool
}

// LimitOption configures [NewLimitConnector].
type LimitOption func(*limitConfig)

// WithLimitRuntime takes the limiter from rt (rules from its "limits:"
// config section) when [NewLimitConnector] is given a nil limiter; the
// default is the default runtime, looked up per statement.
func WithLimitRuntime(rt *shadowlane.Runtime) LimitOption {
	return func(c *limitConfig) { c.rt = rt }
}

// WithLimitFailure decides which statement errors count as failures for
// breakers and metrics (default [IsFailure]).
func WithLimitFailure(fn func(error) bool) LimitOption {
	return func(c *limitConfig) { c.failure = fn }
}

// IsFailure reports whether a statement error is a failure of the
// database: any error but sql.ErrNoRows, a refusal by a limiter, a
// refusal by shadowlane's SQL guard (a *shadow.Error) and a context
// cancelled by the caller.
func IsFailure(err error) bool {
	if err == nil || errors.Is(err, sql.ErrNoRows) || errors.Is(err, limiter.ErrBlocked) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *shadow.Error
	return !errors.As(err, &se)
}

// NewLimitConnector wraps c so that every statement is admitted through
// the flow limiter l (nil: the runtime's, see [WithLimitRuntime]) under
// the resource "sql:<KIND>" ("sql:SELECT", "sql:INSERT", ...; see [Kind]).
// A refused statement is not sent: it fails with the *limiter.BlockError
// (errors.Is(err, limiter.ErrBlocked)). Compose it with the shadowing
// connector in either order:
//
//	db := sql.OpenDB(slsql.NewLimitConnector(slsql.NewConnector(base, rw), rt.Limiter()))
//
// A query is exited when the driver returns its rows, so a concurrency
// rule bounds statements waiting for the database, not rows being read.
// Prepared statements are admitted per execution, under the kind of their
// text. An admitted statement adds no allocation.
func NewLimitConnector(c driver.Connector, l *limiter.Limiter, opts ...LimitOption) driver.Connector {
	cfg := &limitConfig{failure: IsFailure}
	for _, o := range opts {
		o(cfg)
	}
	lc := &limitConnector{base: c, l: l, cfg: cfg}
	if l != nil {
		lc.res.Store(newKindResources(l))
	}
	return lc
}

type kindResources struct {
	l   *limiter.Limiter
	res [len(kinds)]*limiter.Resource
}

func newKindResources(l *limiter.Limiter) *kindResources {
	kr := &kindResources{l: l}
	for i, k := range kinds {
		kr.res[i] = l.Resource("sql:" + k)
	}
	return kr
}

type limitConnector struct {
	base driver.Connector
	l    *limiter.Limiter
	cfg  *limitConfig
	res  atomic.Pointer[kindResources]
}

func (c *limitConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &limitConn{passConn: passConn{cn}, c: c}, nil
}

func (c *limitConnector) Driver() driver.Driver { return c.base.Driver() }

// resource returns the handle of kind k.
func (c *limitConnector) resource(k int) *limiter.Resource {
	kr := c.res.Load()
	if c.l == nil {
		l := shadowlane.OrDefault(c.cfg.rt).Limiter()
		if kr == nil || kr.l != l {
			kr = newKindResources(l)
			c.res.Store(kr)
		}
	}
	return kr.res[k]
}

func (c *limitConnector) exit(tok limiter.Token, err error) {
	if c.cfg.failure(err) {
		tok.ExitErr(err)
	} else {
		tok.Exit()
	}
}

type limitConn struct {
	passConn
	c *limitConnector
}

var (
	_ driver.ExecerContext      = (*limitConn)(nil)
	_ driver.QueryerContext     = (*limitConn)(nil)
	_ driver.ConnPrepareContext = (*limitConn)(nil)
	_ driver.ConnBeginTx        = (*limitConn)(nil)
	_ driver.NamedValueChecker  = (*limitConn)(nil)
	_ driver.SessionResetter    = (*limitConn)(nil)
	_ driver.Validator          = (*limitConn)(nil)
	_ driver.Pinger             = (*limitConn)(nil)
)

func (c *limitConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ex, ok := c.base.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares: the statement is admitted there
	}
	tok, err := c.c.resource(kindOf(query)).Entry(ctx)
	if err != nil {
		return nil, err
	}
	res, err := ex.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.c.exit(tok, err)
	} else {
		tok.Exit()
	}
	return res, err
}

func (c *limitConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qr, ok := c.base.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	tok, err := c.c.resource(kindOf(query)).Entry(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := qr.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		c.c.exit(tok, err)
	} else {
		tok.Exit()
	}
	return rows, err
}

func (c *limitConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *limitConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if pc, ok := c.base.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.base.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &limitStmt{base: st, c: c, kind: kindOf(query)}, nil
}

func (c *limitConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *limitConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bt, ok := c.base.(driver.ConnBeginTx); ok {
		return bt.BeginTx(ctx, opts)
	}
	//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
	return c.base.Begin()
}

// limitStmt admits each execution of a prepared statement.
type limitStmt struct {
	base driver.Stmt
	c    *limitConn
	kind int
}

var (
	_ driver.StmtExecContext   = (*limitStmt)(nil)
	_ driver.StmtQueryContext  = (*limitStmt)(nil)
	_ driver.NamedValueChecker = (*limitStmt)(nil)
)

func (s *limitStmt) Close() error  { return s.base.Close() }
func (s *limitStmt) NumInput() int { return s.base.NumInput() }

func (s *limitStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *limitStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *limitStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	tok, err := s.c.c.resource(s.kind).Entry(ctx)
	if err != nil {
		return nil, err
	}
	var res driver.Result
	if sc, ok := s.base.(driver.StmtExecContext); ok {
		res, err = sc.ExecContext(ctx, args)
	} else {
		var v []driver.Value
		if v, err = values(args); err == nil {
			//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
			res, err = s.base.Exec(v)
		}
	}
	s.c.c.exit(tok, err)
	return res, err
}

func (s *limitStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	tok, err := s.c.c.resource(s.kind).Entry(ctx)
	if err != nil {
		return nil, err
	}
	var rows driver.Rows
	if sc, ok := s.base.(driver.StmtQueryContext); ok {
		rows, err = sc.QueryContext(ctx, args)
	} else {
		var v []driver.Value
		if v, err = values(args); err == nil {
			//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
			rows, err = s.base.Query(v)
		}
	}
	s.c.c.exit(tok, err)
	return rows, err
}

func (s *limitStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := s.base.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	//lint:ignore SA1019 a wrapped driver that only implements ColumnConverter must keep its conversions, as database/sql would apply them
	if cc, ok := s.base.(driver.ColumnConverter); ok {
		v, err := cc.ColumnConverter(nv.Ordinal - 1).ConvertValue(nv.Value)
		if err != nil {
			return err
		}
		nv.Value = v
		return nil
	}
	return s.c.CheckNamedValue(nv)
}
