package slsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// NewConnector wraps c in slsql's driver wrapper: statements are shadowed
// by rw (table mode: marked statements rewritten onto shadow tables,
// unmarked ones checked by the two-way guard) and, with [WithLimits] or
// [WithLimiter], admitted through a flow limiter under the resource
// "sql:<KIND>" (see [Kind]). One wrapper does both: a statement is
// rewritten (or refused) first, then admitted, then sent.
//
// rw may be nil only when limiting is on (a pool that serves no load-test
// traffic); a connector with neither is refused with [ErrConfig].
func NewConnector(c driver.Connector, rw *sqlshadow.Rewriter, opts ...Option) (driver.Connector, error) {
	cfg := newConfig(opts)
	if c == nil || (rw == nil && !cfg.limit) {
		return nil, ErrConfig
	}
	cn := &connector{base: c, rw: rw, rt: cfg.rt}
	if cfg.limit {
		cn.lim = newLimits(cfg)
	}
	return cn, nil
}

// OpenDB is sql.OpenDB(NewConnector(c, rw, opts...)). Like sql.OpenDB it
// returns no error: it panics with [ErrConfig] where NewConnector would
// return it (a nil connector or rewriter), a programming error.
func OpenDB(c driver.Connector, rw *sqlshadow.Rewriter, opts ...Option) *sql.DB {
	cn, err := NewConnector(c, rw, opts...)
	if err != nil {
		panic(err)
	}
	return sql.OpenDB(cn)
}

// ErrConfig: [NewConnector] needs a connector and a rewriter (or limiting).
var ErrConfig = errors.New("slsql: NewConnector needs a connector and a rewriter (or WithLimits/WithLimiter for limiting alone)")

// DSNConnector returns a connector opening dsn with d, for drivers that do
// not implement [driver.DriverContext].
func DSNConnector(d driver.Driver, dsn string) (driver.Connector, error) {
	if dc, ok := d.(driver.DriverContext); ok {
		return dc.OpenConnector(dsn)
	}
	return dsnConnector{d, dsn}, nil
}

type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

type connector struct {
	base driver.Connector
	rw   *sqlshadow.Rewriter // nil: no shadowing
	lim  *limits             // nil: no limiting
	rt   *shadowlane.Runtime // WithRuntime; nil: the default, looked up per use
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{base: cn, rw: c.rw, lim: c.lim, rt: c.rt}, nil
}

func (c *connector) Driver() driver.Driver { return c.base.Driver() }

// conn wraps one driver connection. database/sql never uses a connection
// from two goroutines at once, so txMark needs no lock.
type conn struct {
	base   driver.Conn
	rw     *sqlshadow.Rewriter // nil: no shadowing
	lim    *limits             // nil: no limiting
	rt     *shadowlane.Runtime // WithRuntime; nil: the default
	txMark propagation.Mark    // mark of the open transaction begun marked
	// alerted is the statement the lost-mark guard last let through
	// (testData.action: alert), so that the prepared fallback after
	// driver.ErrSkip does not count it twice (lostmark.go).
	alerted string
}

var (
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
)

// mark is the mark statements on this connection run under: the context's,
// or the one of the transaction begun marked.
func (c *conn) mark(ctx context.Context) propagation.Mark {
	if m := propagation.FromContext(ctx); m.Run != "" {
		return m
	}
	return c.txMark
}

// text returns the statement to run for m.
func (c *conn) text(m propagation.Mark, query string) (string, error) {
	if c.rw == nil {
		return query, nil
	}
	if m.Run != "" {
		return c.rw.Rewrite(m, query)
	}
	return query, c.rw.Guard(query)
}

// statement returns the mark a statement runs under and its text. Without
// a rewriter (limiting alone) it does not look the mark up.
func (c *conn) statement(ctx context.Context, query string, args []driver.NamedValue) (propagation.Mark, string, error) {
	if c.rw == nil {
		return propagation.Mark{}, query, nil
	}
	m := c.mark(ctx)
	if td := c.testData(); td != nil && m.Run == "" {
		if err := c.lostMark(ctx, td, query, args); err != nil { // lostmark.go (testData:)
			return m, "", err
		}
	}
	q, err := c.text(m, query)
	return m, q, err
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if base, ok := c.base.(driver.ExecerContext); ok {
		return connCall(c, ctx, query, args, base, driver.ExecerContext.ExecContext)
	}
	//lint:ignore SA1019 a driver with only the old Execer runs statements directly under database/sql, so it runs them directly through the wrapper too
	if base, ok := c.base.(driver.Execer); ok {
		return connCall(c, ctx, query, args, base, execOld)
	}
	return nil, driver.ErrSkip
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if base, ok := c.base.(driver.QueryerContext); ok {
		return connCall(c, ctx, query, args, base, driver.QueryerContext.QueryContext)
	}
	//lint:ignore SA1019 a driver with only the old Queryer runs queries directly under database/sql, so it runs them directly through the wrapper too
	if base, ok := c.base.(driver.Queryer); ok {
		return connCall(c, ctx, query, args, base, queryOld)
	}
	return nil, driver.ErrSkip
}

// execOld and queryOld call a driver's pre-context Exec and Query the way
// database/sql does (ctxDriverExec, ctxDriverQuery): named parameters
// refused, a context already done not sent. Answering driver.ErrSkip for
// such a driver instead would make database/sql prepare, run and close a
// statement: two more round trips per statement than the bare driver.
//
//lint:ignore SA1019 see ExecContext
func execOld(e driver.Execer, ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	v, err := oldArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return e.Exec(query, v)
}

//lint:ignore SA1019 see QueryContext
func queryOld(q driver.Queryer, ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	v, err := oldArgs(ctx, args)
	if err != nil {
		return nil, err
	}
	return q.Query(query, v)
}

func oldArgs(ctx context.Context, args []driver.NamedValue) ([]driver.Value, error) {
	v, err := values(args)
	if err != nil {
		return nil, err
	}
	return v, ctx.Err()
}

// connCall runs query on the base connection with call (base's
// ExecContext or QueryContext, or its pre-context Exec or Query; a base
// with neither answered driver.ErrSkip before: database/sql prepares
// instead, and PrepareContext rewrites): rewritten for the mark of ctx,
// admitted by the limiter when there is one, its error mapped.
func connCall[R any, C any](c *conn, ctx context.Context, query string, args []driver.NamedValue,
	base C, call func(C, context.Context, string, []driver.NamedValue) (R, error)) (R, error) {
	var zero R
	m, q, err := c.statement(ctx, query, args)
	if err != nil {
		return zero, err
	}
	if c.lim == nil {
		r, err := call(base, ctx, q, args)
		return r, c.mapErr(m, err)
	}
	tok, err := c.lim.resource(kindOf(query)).Entry(ctx)
	if err != nil {
		return zero, err
	}
	r, err := call(base, ctx, q, args)
	c.lim.exit(tok, err)
	return r, c.mapErr(m, err)
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	m := c.mark(ctx)
	s := &stmt{c: c, query: query, kind: kindOf(query)}
	st, err := c.prepare(ctx, m, query)
	if err != nil {
		return nil, err
	}
	if m.Run != "" {
		s.shadow = st
	} else {
		s.prod = st
	}
	return s, nil
}

func (c *conn) prepare(ctx context.Context, m propagation.Mark, query string) (driver.Stmt, error) {
	q, err := c.text(m, query)
	if err != nil {
		return nil, err
	}
	var st driver.Stmt
	if pc, ok := c.base.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, q)
	} else {
		st, err = c.base.Prepare(q)
	}
	return st, c.mapErr(m, err)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var tx driver.Tx
	var err error
	if bt, ok := c.base.(driver.ConnBeginTx); ok {
		tx, err = bt.BeginTx(ctx, opts)
	} else {
		if opts.Isolation != 0 || opts.ReadOnly {
			return nil, errors.New("slsql: driver does not support transaction options")
		}
		//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
		tx, err = c.base.Begin()
	}
	if err != nil {
		if c.rw != nil {
			c.countErr(propagation.FromContext(ctx).Run, err)
		}
		return nil, err
	}
	c.txMark = propagation.FromContext(ctx)
	if c.txMark.Run == "" {
		c.txMark = propagation.Mark{}
	}
	return &txWrap{base: tx, c: c}, nil
}

type txWrap struct {
	base driver.Tx
	c    *conn
}

// Commit ends the transaction; a marked transaction whose commit fails
// (say, a serialization failure) counts the error in the run's evidence.
func (t *txWrap) Commit() error {
	run := t.c.txMark.Run
	t.c.txMark = propagation.Mark{}
	err := t.base.Commit()
	t.c.countErr(run, err)
	return err
}

func (t *txWrap) Rollback() error { t.c.txMark = propagation.Mark{}; return t.base.Rollback() }

func (c *conn) ResetSession(ctx context.Context) error {
	c.txMark = propagation.Mark{}
	if sr, ok := c.base.(driver.SessionResetter); ok {
		return sr.ResetSession(ctx)
	}
	return nil
}

// The optional driver.Conn interfaces the wrapper passes through unchanged.

func (c *conn) Close() error { return c.base.Close() }

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := c.base.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *conn) IsValid() bool {
	if v, ok := c.base.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.base.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// stmt is a prepared statement that remembers its text. It holds at most
// one driver statement per side (production text, shadow text) and
// prepares the side a call needs on first use.
type stmt struct {
	c            *conn
	query        string
	kind         int // limiter resource, see kindOf
	prod, shadow driver.Stmt
}

var (
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (s *stmt) side(ctx context.Context) (driver.Stmt, error) {
	m := s.c.mark(ctx)
	if m.Run != "" && s.c.rw != nil {
		if s.shadow == nil {
			st, err := s.c.prepare(ctx, m, s.query)
			if err != nil {
				return nil, err
			}
			s.shadow = st
		} else if _, err := s.c.rw.Rewrite(m, s.query); err != nil { // count the decision
			return nil, err
		}
		return s.shadow, nil
	}
	if s.prod == nil {
		st, err := s.c.prepare(ctx, m, s.query)
		if err != nil {
			return nil, err
		}
		s.prod = st
	}
	return s.prod, nil
}

func (s *stmt) Close() error {
	var err error
	if s.prod != nil {
		err = s.prod.Close()
	}
	if s.shadow != nil {
		if e := s.shadow.Close(); err == nil {
			err = e
		}
	}
	return err
}

func (s *stmt) NumInput() int {
	if s.prod != nil {
		return s.prod.NumInput()
	}
	if s.shadow != nil {
		return s.shadow.NumInput()
	}
	return -1
}

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
	return stmtCall(s, ctx, args, driver.StmtExecContext.ExecContext, driver.Stmt.Exec)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	//lint:ignore SA1019 the wrapped driver may predate the context interfaces; database/sql itself falls back the same way
	return stmtCall(s, ctx, args, driver.StmtQueryContext.QueryContext, driver.Stmt.Query)
}

// stmtCall runs one execution (or query) of s with args: the lost-mark
// guard first (testData:, lostmark.go), then on the side ctx needs,
// through the context-aware call when the driver's statement has it (its
// interface C), else through old with plain values.
func stmtCall[R any, C any](s *stmt, ctx context.Context, args []driver.NamedValue,
	call func(C, context.Context, []driver.NamedValue) (R, error), old func(driver.Stmt, []driver.Value) (R, error)) (R, error) {
	var zero R
	if td := s.c.testData(); td != nil {
		if err := s.c.lostMarkStmt(ctx, td, s.query, args); err != nil {
			return zero, err
		}
	}
	return runStmt(s, ctx, func(st driver.Stmt) (R, error) {
		if sc, ok := any(st).(C); ok {
			return call(sc, ctx, args)
		}
		v, err := values(args)
		if err != nil {
			return zero, err
		}
		return old(st, v)
	})
}

// runStmt runs one execution of s: on the side ctx needs (prepared on
// first use), admitted by the limiter when the connector limits.
func runStmt[R any](s *stmt, ctx context.Context, run func(driver.Stmt) (R, error)) (R, error) {
	var zero R
	st, err := s.side(ctx)
	if err != nil {
		return zero, err
	}
	var tok limiter.Token
	if s.c.lim != nil {
		if tok, err = s.c.lim.resource(s.kind).Entry(ctx); err != nil {
			return zero, err
		}
	}
	r, err := run(st)
	if s.c.lim != nil {
		s.c.lim.exit(tok, err)
	}
	return r, s.c.mapErr(s.c.mark(ctx), err)
}

func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	st := s.prod
	if st == nil {
		st = s.shadow
	}
	if nvc, ok := st.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	//lint:ignore SA1019 a wrapped driver that only implements ColumnConverter must keep its conversions, as database/sql would apply them
	if cc, ok := st.(driver.ColumnConverter); ok {
		v, err := cc.ColumnConverter(nv.Ordinal - 1).ConvertValue(nv.Value)
		if err != nil {
			return err
		}
		nv.Value = v
		return nil
	}
	return s.c.CheckNamedValue(nv)
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func values(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("slsql: driver does not support named parameters")
		}
		out[i] = a.Value
	}
	return out, nil
}
