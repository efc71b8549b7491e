package slgorm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Plugin is the shadowlane gorm plugin. Build it with [New] or
// [NewDatabase] and register it with db.Use.
type Plugin struct {
	rw     *sqlshadow.Rewriter // table mode
	shadow gorm.ConnPool       // database mode: the checked shadow pool
	check  *sqlshadow.Rewriter // database mode: inspects what reaches shadow
	store  string
	rt     *shadowlane.Runtime // WithRuntime; nil: the default
}

// New returns a table-mode plugin: marked statements are rewritten by rw.
// A nil rw is refused with [ErrConfig].
func New(rw *sqlshadow.Rewriter, opts ...Option) (*Plugin, error) {
	if rw == nil {
		return nil, fmt.Errorf("%w: New needs a Rewriter", ErrConfig)
	}
	return with(&Plugin{rw: rw, store: rw.Dialect().Name()}, opts), nil
}

func with(p *Plugin, opts []Option) *Plugin {
	for _, o := range opts {
		o.apply(p)
	}
	return p
}

// NewDatabase returns a database-mode plugin: marked statements run on the
// pool of shadowDB (opened with the same dialector as production), after
// rw, a Rewriter built [sqlshadow.WithDatabase] naming the shadow database
// (MySQL/MariaDB), the schemas marked statements may name (PostgreSQL) or
// "main" (SQLite), has inspected them.
//
// Every statement that reaches the shadow pool through the plugin (ORM
// statements, Raw/Exec/Row, and every statement of a transaction begun
// marked) is parsed first. A statement that references a table qualified
// with another database or schema (INSERT INTO proddb.orders, DROP TABLE
// proddb.orders), calls a function not known to be side-effect free,
// changes session state, holds executable comments, is DDL, or does not
// parse is refused with a *shadow.Error and never runs. The strongest
// protection remains a shadow user without privileges on production
// (`shadowlane check --shadow-mysql` / `--shadow-postgres`).
//
// Without a database-mode rw (nil, or a table-mode Rewriter) or without a
// shadowDB, NewDatabase returns [ErrConfig]: there is no unchecked database
// mode. db.Use fails with ErrConfig when the shadow pool is production's, as happens when both were opened with
// the same *gorm.Config (gorm keeps the pool in it): give each gorm.Open
// its own config.
func NewDatabase(shadowDB *gorm.DB, rw *sqlshadow.Rewriter, opts ...Option) (*Plugin, error) {
	switch {
	case shadowDB == nil || shadowDB.ConnPool == nil:
		return nil, fmt.Errorf("%w: NewDatabase needs an open shadow *gorm.DB", ErrConfig)
	case rw == nil || !rw.DatabaseMode():
		return nil, fmt.Errorf("%w: NewDatabase needs a Rewriter built with sqlshadow.WithDatabase", ErrConfig)
	}
	return with(&Plugin{shadow: &checkedPool{base: shadowDB.ConnPool, rw: rw}, check: rw, store: shadowDB.Dialector.Name()}, opts), nil
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return "shadowlane" }

// ErrConfig: a plugin without a target (returned by [New] and
// [NewDatabase]), or whose shadow pool is production's (returned by db.Use).
var ErrConfig = errors.New("slgorm: plugin needs a rewriter (New) or a shadow database (NewDatabase)")

// Initialize implements gorm.Plugin.
func (p *Plugin) Initialize(db *gorm.DB) error {
	if p == nil || (p.rw == nil && p.shadow == nil) {
		return ErrConfig // a zero Plugin, not built by New or NewDatabase
	}
	if p.shadow != nil && samePool(db.ConnPool, p.shadow.(*checkedPool).base) {
		return fmt.Errorf("%w: the shadow database of NewDatabase is the production pool", ErrConfig)
	}
	if ps, ok := db.ConnPool.(*gorm.PreparedStmtDB); ok {
		// PrepareStmt: true. Keep gorm's own *gorm.PreparedStmtDB where
		// the application finds it (db.ConnPool: Close, Reset, Stmts) and
		// wrap the pool it prepares on instead. Sessions with PrepareStmt
		// share it (gorm caches it), so they are covered too.
		if _, done := ps.ConnPool.(*pool); !done {
			ps.ConnPool = &pool{fwd: fwd{ps.ConnPool}, p: p}
		}
	} else {
		top := &pool{fwd: fwd{db.ConnPool}, p: p}
		db.ConnPool = top
		if db.Statement != nil {
			db.Statement.ConnPool = top
		}
	}
	for _, h := range callbacks {
		if err := h.point(db, h.at, false).Register("shadowlane:"+h.op, p.wrap); err != nil {
			return err
		}
		if err := h.point(db, h.done, h.doneAfter).Register("shadowlane:"+h.op+"_done", p.unwrap); err != nil {
			return err
		}
	}
	return nil
}

// callbacks is where the plugin enters each of gorm's operations: wrap
// ("shadowlane:<op>") right before the operation's own callback (at),
// unwrap ("shadowlane:<op>_done") once its statements ran (before done, or
// after it): before the associations are saved or preloaded (they are
// operations of their own), or right after a Row/Raw statement.
var callbacks = [...]hook{
	{"create", "gorm:create", "gorm:save_after_associations", false},
	{"query", "gorm:query", "gorm:preload", false},
	{"update", "gorm:update", "gorm:save_after_associations", false},
	{"delete", "gorm:delete", "gorm:after_delete", false},
	{"row", "gorm:row", "gorm:row", true},
	{"raw", "gorm:raw", "gorm:raw", true},
}

type hook struct {
	op, at, done string
	doneAfter    bool
}

// registrar is a point in one of gorm's callback chains.
type registrar interface {
	Register(name string, fn func(*gorm.DB)) error
}

// point returns the point before (or after) the callback named name in
// the chain of h's operation.
func (h hook) point(db *gorm.DB, name string, after bool) registrar {
	cb := db.Callback()
	switch h.op {
	case "create":
		return beside(cb.Create(), name, after)
	case "query":
		return beside(cb.Query(), name, after)
	case "update":
		return beside(cb.Update(), name, after)
	case "delete":
		return beside(cb.Delete(), name, after)
	case "row":
		return beside(cb.Row(), name, after)
	}
	return beside(cb.Raw(), name, after)
}

// beside is p.Before(name) or p.After(name) for a gorm processor p.
func beside[C registrar](p interface {
	Before(string) C
	After(string) C
}, name string, after bool) registrar {
	if after {
		return p.After(name)
	}
	return p.Before(name)
}

// wrap installs the statement pool for the statement about to run.
func (p *Plugin) wrap(db *gorm.DB) {
	st := db.Statement
	if db.Error != nil || st == nil || st.ConnPool == nil {
		return
	}
	base := st.ConnPool
	if sp, ok := base.(*stmtPool); ok {
		base = sp.orig
	}
	m := propagation.FromContext(st.Context)
	tx, inTx := ownTx(base)
	if m.Run == "" && inTx {
		m = tx.mark // a transaction begun marked stays shadow
	}
	sp := &stmtPool{orig: base, target: base, p: p, mark: m, table: st.Table}
	if p.shadow != nil && m.Run != "" {
		switch {
		case inTx && tx.mark.Run != "":
			// Already on the shadow database. Run on the plugin's
			// transaction itself, not through a *gorm.PreparedStmtTX around
			// it (PrepareStmt): that one prepares through the production
			// pool's statement cache, which would hand a statement of the
			// shadow database to a later production transaction.
			sp.target = tx
		case inTx || isTx(base):
			db.AddError(shadow.Refuse(p.store, "transaction", "marked statement inside a production transaction cannot reach the shadow database", m, shadow.ErrBlocked))
			p.decisions().Record(m.Run, p.store, "transaction", shadow.Block)
			return
		default:
			sp.target = p.shadow
			p.decisions().Add(m.Run, p.store, "database", "shadow database", shadow.Redirect, 1)
		}
	}
	st.ConnPool = sp
}

// ownTx returns the plugin's transaction behind c: c itself, or the
// transaction of a PreparedStmtTX that gorm (PrepareStmt) or dbresolver
// built around it.
func ownTx(c gorm.ConnPool) (*txPool, bool) {
	switch t := c.(type) {
	case *txPool:
		return t, true
	case *gorm.PreparedStmtTX:
		tp, ok := t.Tx.(*txPool)
		return tp, ok
	}
	return nil, false
}

func isTx(c gorm.ConnPool) bool {
	_, ok := c.(gorm.TxCommitter)
	return ok
}

// unwrap restores the pool the statement had, so transactions can commit
// and later statements start clean; a marked statement that failed counts
// its error in the run's evidence.
func (p *Plugin) unwrap(db *gorm.DB) {
	if sp, ok := db.Statement.ConnPool.(*stmtPool); ok {
		db.Statement.ConnPool = sp.orig
		if sp.mark.Run != "" && db.Error != nil {
			p.countErr(sp.mark.Run, db.Error)
		}
	}
}

// countErr counts the error of a marked statement in the run's evidence
// under [sqlshadow.ErrorReason] ("sql 23505"), in the series the
// plugin's rewriter counts its decisions in. Not counted:
// gorm.ErrRecordNotFound (an answer, not a failure) and shadowlane's own
// refusals (counted as decisions: block).
func (p *Plugin) countErr(run string, err error) {
	var se *shadow.Error
	if errors.Is(err, gorm.ErrRecordNotFound) || errors.As(err, &se) {
		return
	}
	rw := p.rw
	if rw == nil {
		rw = p.check
	}
	rw.Decisions().RunError(run, sqlshadow.ErrorReason(err))
}

// stmtPool runs one statement: in table mode it rewrites (marked) or guards
// (unmarked) the final SQL before handing it to target; in both modes an
// unmarked statement passes the lost-mark guard (lostmark.go).
type stmtPool struct {
	orig, target gorm.ConnPool
	p            *Plugin
	mark         propagation.Mark
	table        string // the statement's table, for the lost-mark count
}

func (s *stmtPool) text(query string) (string, error) {
	if s.p.rw == nil {
		return query, nil // database mode: target already chosen
	}
	if s.mark.Run != "" {
		return s.p.rw.Rewrite(s.mark, query)
	}
	return query, s.p.rw.Guard(query)
}

func (s *stmtPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	ctx, q, err := s.statement(ctx, query, nil)
	if err != nil {
		return nil, err
	}
	return s.target.PrepareContext(ctx, q)
}

func (s *stmtPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, q, err := s.statement(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return s.target.ExecContext(ctx, q, args...)
}

func (s *stmtPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, q, err := s.statement(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return s.target.QueryContext(ctx, q, args...)
}

func (s *stmtPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx, q, err := s.statement(ctx, query, args)
	if err != nil {
		return errRow(ctx, err)
	}
	return s.target.QueryRowContext(ctx, q, args...)
}

// statement is the lost-mark guard, then the text to run.
func (s *stmtPool) statement(ctx context.Context, query string, args []any) (context.Context, string, error) {
	if td := s.p.testData(); td != nil && s.mark.Run == "" {
		var err error
		if ctx, err = s.lostMark(ctx, td, query, args); err != nil { // lostmark.go (testData:)
			return ctx, "", err
		}
	}
	q, err := s.text(query)
	return ctx, q, err
}

// errRow returns a *sql.Row whose Scan and Err return err: the statement
// never reaches a database.
func errRow(ctx context.Context, err error) *sql.Row {
	db := sql.OpenDB(errConnector{err})
	defer db.Close()
	return db.QueryRowContext(ctx, "refused")
}

type errConnector struct{ err error }

func (c errConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c errConnector) Driver() driver.Driver                        { return errDriver(c) }

type errDriver struct{ err error }

func (d errDriver) Open(string) (driver.Conn, error) { return nil, d.err }

// pool replaces db.ConnPool so that transactions remember the mark they
// were begun with (and, in database mode, begin on the shadow database).
type pool struct {
	fwd
	p *Plugin
}

// fwd passes statements on to base as they are (pool and txPool: the
// callbacks already rewrote them).
type fwd struct{ base gorm.ConnPool }

func (f fwd) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return f.base.PrepareContext(ctx, q)
}
func (f fwd) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return f.base.ExecContext(ctx, q, args...)
}
func (f fwd) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return f.base.QueryContext(ctx, q, args...)
}
func (f fwd) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return f.base.QueryRowContext(ctx, q, args...)
}

// GetDBConn keeps db.DB() working.
func (c *pool) GetDBConn() (*sql.DB, error) {
	db, err := dbOf(c.base)
	if err != nil {
		return nil, fmt.Errorf("slgorm: underlying pool exposes %w", err)
	}
	return db, nil
}

// BeginTx implements gorm.ConnPoolBeginner.
func (c *pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	m := propagation.FromContext(ctx)
	from := c.base
	if m.Run != "" && c.p.shadow != nil {
		from = c.p.shadow
		c.p.decisions().Add(m.Run, c.p.store, "database", "shadow database", shadow.Redirect, 1)
	} else if m.Run == "" {
		m = propagation.Mark{}
	}
	tx, err := beginOn(ctx, from, opts)
	if err != nil {
		return nil, err
	}
	return &txPool{fwd: fwd{tx}, mark: m}, nil
}

// beginOn begins a transaction on the pool from, however it offers one.
func beginOn(ctx context.Context, from gorm.ConnPool, opts *sql.TxOptions) (gorm.ConnPool, error) {
	switch b := from.(type) {
	case gorm.TxBeginner:
		return b.BeginTx(ctx, opts)
	case gorm.ConnPoolBeginner:
		return b.BeginTx(ctx, opts)
	}
	return nil, gorm.ErrInvalidTransaction
}

// txPool is a transaction with the mark it was begun with.
type txPool struct {
	fwd
	mark propagation.Mark
}

func (t *txPool) Commit() error   { return endTx(t.base, true) }
func (t *txPool) Rollback() error { return endTx(t.base, false) }

// endTx commits (or rolls back) base when it is a transaction.
func endTx(base gorm.ConnPool, commit bool) error {
	c, ok := base.(gorm.TxCommitter)
	switch {
	case !ok:
		return gorm.ErrInvalidTransaction
	case commit:
		return c.Commit()
	default:
		return c.Rollback()
	}
}

// StmtContext lets gorm's PrepareStmt sessions use the transaction.
func (t *txPool) StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	if sc, ok := t.base.(interface {
		StmtContext(context.Context, *sql.Stmt) *sql.Stmt
	}); ok {
		return sc.StmtContext(ctx, s)
	}
	return s
}

// GetDBConn keeps db.DB() working inside transactions.
func (t *txPool) GetDBConn() (*sql.DB, error) {
	if g, ok := t.base.(gorm.GetDBConnector); ok {
		return g.GetDBConn()
	}
	return nil, nil
}

// samePool reports whether a and b hand out the same *sql.DB.
func samePool(a, b gorm.ConnPool) bool {
	da, ea := dbOf(a)
	db, eb := dbOf(b)
	return ea == nil && eb == nil && da != nil && da == db
}

func dbOf(c gorm.ConnPool) (*sql.DB, error) {
	switch b := c.(type) {
	case *sql.DB:
		return b, nil
	case gorm.GetDBConnector:
		return b.GetDBConn()
	}
	return nil, errors.New("no *sql.DB")
}

// checkedPool is the shadow database's pool in database mode, and every
// transaction begun on it: each statement is inspected by the plugin's
// database-mode Rewriter before it runs. Everything reaching this pool is
// load-test work (the plugin sends nothing else here), so every statement
// is checked, whatever its context says; mark is the one of the
// transaction, for errors of statements run with an unmarked context.
type checkedPool struct {
	base gorm.ConnPool
	rw   *sqlshadow.Rewriter
	mark propagation.Mark
}

func (c *checkedPool) check(ctx context.Context, q string) error {
	m := propagation.FromContext(ctx)
	if m.Run == "" {
		m = c.mark
	}
	_, err := c.rw.Rewrite(m, q)
	return err
}

func (c *checkedPool) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	if err := c.check(ctx, q); err != nil {
		return nil, err
	}
	return c.base.PrepareContext(ctx, q)
}

func (c *checkedPool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if err := c.check(ctx, q); err != nil {
		return nil, err
	}
	return c.base.ExecContext(ctx, q, args...)
}

func (c *checkedPool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := c.check(ctx, q); err != nil {
		return nil, err
	}
	return c.base.QueryContext(ctx, q, args...)
}

func (c *checkedPool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if err := c.check(ctx, q); err != nil {
		return errRow(ctx, err)
	}
	return c.base.QueryRowContext(ctx, q, args...)
}

// GetDBConn keeps db.DB() working.
func (c *checkedPool) GetDBConn() (*sql.DB, error) { return dbOf(c.base) }

// BeginTx begins on the shadow database; the transaction stays checked.
func (c *checkedPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := beginOn(ctx, c.base, opts)
	if err != nil {
		return nil, err
	}
	return &checkedTx{checkedPool{base: tx, rw: c.rw, mark: propagation.FromContext(ctx)}}, nil
}

// checkedTx is a transaction on the shadow database.
type checkedTx struct{ checkedPool }

func (t *checkedTx) Commit() error   { return endTx(t.base, true) }
func (t *checkedTx) Rollback() error { return endTx(t.base, false) }

// StmtContext binds a statement prepared earlier (gorm's PrepareStmt
// cache) to the transaction. Its text was checked when it was prepared on
// the shadow database; database/sql refuses a statement of another pool
// (production). A transaction that cannot bind statements gets one that
// refuses every use, never the statement unbound (it would run outside the
// transaction, on the pool it was prepared on).
func (t *checkedTx) StmtContext(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	base := t.base
	if ps, ok := base.(*gorm.PreparedStmtTX); ok {
		base = ps.Tx
	}
	if sc, ok := base.(interface {
		StmtContext(context.Context, *sql.Stmt) *sql.Stmt
	}); ok {
		return sc.StmtContext(ctx, s)
	}
	return refusedStmt(ctx, shadow.Refuse(t.rw.Dialect().Name(), "transaction", "the shadow transaction cannot bind a prepared statement", t.mark, shadow.ErrUnsupported))
}

// refusedStmt returns a *sql.Stmt every use of which fails with err.
func refusedStmt(ctx context.Context, err error) *sql.Stmt {
	st, perr := sql.OpenDB(refuseConnector{err}).PrepareContext(ctx, "refused")
	if perr != nil {
		panic("slgorm: refusing statement: " + perr.Error()) // the refusing driver's Prepare cannot fail
	}
	return st
}

type refuseConnector struct{ err error }

func (c refuseConnector) Connect(context.Context) (driver.Conn, error) { return refuseConn(c), nil }
func (c refuseConnector) Driver() driver.Driver                        { return errDriver(c) }

type refuseConn struct{ err error }

func (c refuseConn) Prepare(string) (driver.Stmt, error) { return refuseStmt(c), nil }
func (c refuseConn) Close() error                        { return nil }
func (c refuseConn) Begin() (driver.Tx, error)           { return nil, c.err }

type refuseStmt struct{ err error }

func (s refuseStmt) Close() error                               { return nil }
func (s refuseStmt) NumInput() int                              { return -1 }
func (s refuseStmt) Exec([]driver.Value) (driver.Result, error) { return nil, s.err }
func (s refuseStmt) Query([]driver.Value) (driver.Rows, error)  { return nil, s.err }
