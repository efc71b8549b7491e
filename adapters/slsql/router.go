package slsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Router sends marked (load-test) work to a shadow database and everything
// else to production (database mode). Both pools are required: a router
// without a shadow pool cannot be built, so marked work never falls back to
// production.
type Router struct {
	prod, shadow *sql.DB
	store        string
	rt           *shadowlane.Runtime // WithRuntime; nil: the default
}

// ErrNoShadowDB is returned by [NewRouter] and [NewUncheckedRouter] when a
// pool is missing.
var ErrNoShadowDB = errors.New("slsql: router needs a production pool and a shadow database")

// NewRouter returns a Router (database mode) whose shadow pool inspects
// every marked statement before it runs. store names the database in errors
// and decision counts ("mysql", "postgres", "orders-db", ...), prod is the
// production pool, shadow the connector of the shadow database (for a
// driver name and DSN: [DSNConnector]) and rw a Rewriter built
// [sqlshadow.WithDatabase] naming the shadow database (MySQL/MariaDB) or the
// schemas marked statements may name (PostgreSQL).
//
// A marked statement that references a table qualified with another
// database or schema (INSERT INTO proddb.orders, DROP TABLE proddb.orders),
// calls a function not known to be side-effect free, changes session
// state, holds executable comments, is DDL, or does not parse is refused
// with a *shadow.Error before reaching the server. Every marked path
// through the shadow pool is checked (Router methods, DB(ctx), Shadow(),
// prepared statements, and every statement of a transaction begun marked),
// because the checks sit in the pool's connector. Unmarked statements sent
// to Shadow() on purpose (tooling that creates shadow tables) are not
// inspected.
// The strongest protection remains a shadow user that has no privilege on
// production databases at all: `shadowlane check --shadow-mysql` /
// `--shadow-postgres` reports the privileges it holds.
//
// opts configure the shadow pool's connector as for [NewConnector];
// [WithRuntime] also names the runtime the Router counts its redirects in.
func NewRouter(store string, prod *sql.DB, shadow driver.Connector, rw *sqlshadow.Rewriter, opts ...Option) (*Router, error) {
	if prod == nil || shadow == nil {
		return nil, ErrNoShadowDB
	}
	if rw == nil || !rw.DatabaseMode() {
		return nil, fmt.Errorf("%w: slsql.NewRouter needs a Rewriter built with sqlshadow.WithDatabase", sqlshadow.ErrConfig)
	}
	cn, err := NewConnector(shadow, rw, opts...)
	if err != nil {
		return nil, err
	}
	return &Router{prod: prod, shadow: sql.OpenDB(cn), store: store, rt: newConfig(opts).rt}, nil
}

// NewUncheckedRouter returns a Router whose shadow pool is shadowDB as it
// is: an explicit opt-out of the checks of [NewRouter], for shadow
// databases on a separate server whose credentials cannot reach production,
// or statements the dialect cannot parse.
//
// Risk: nothing inspects the statements sent to shadowDB. A marked
// statement naming a production database explicitly (INSERT INTO
// proddb.orders, DROP TABLE proddb.orders), a function that writes
// production, or a session change runs exactly as written, and changes
// production whenever the shadow pool's user may. Use it only with a shadow
// user that holds no privilege on production (verify with `shadowlane
// check --shadow-mysql` / `--shadow-postgres`). Of opts only [WithRuntime]
// applies: the runtime the Router counts its redirects in.
func NewUncheckedRouter(store string, prod, shadowDB *sql.DB, opts ...Option) (*Router, error) {
	if prod == nil || shadowDB == nil || prod == shadowDB {
		return nil, ErrNoShadowDB
	}
	return &Router{prod: prod, shadow: shadowDB, store: store, rt: newConfig(opts).rt}, nil
}

// DB returns the pool for ctx: the shadow pool for marked contexts.
func (r *Router) DB(ctx context.Context) *sql.DB {
	if run := propagation.FromContext(ctx).Run; run != "" {
		shadowlane.OrDefault(r.rt).Decisions().Add(run, r.store, "database", "shadow database", shadow.Redirect, 1)
		return r.shadow
	}
	return r.prod
}

// Production and Shadow return the two pools.
func (r *Router) Production() *sql.DB { return r.prod }
func (r *Router) Shadow() *sql.DB     { return r.shadow }

func (r *Router) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.DB(ctx).ExecContext(ctx, query, args...)
}

func (r *Router) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.DB(ctx).QueryContext(ctx, query, args...)
}

func (r *Router) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.DB(ctx).QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares query on the pool of ctx. The returned [Stmt]
// picks the pool again on every call: prepared unmarked and executed
// marked, it runs on the shadow pool (prepared there on first use), never on
// production.
func (r *Router) PrepareContext(ctx context.Context, query string) (*Stmt, error) {
	s := &Stmt{r: r, query: query}
	if _, err := s.stmt(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Stmt is a prepared statement of a [Router].
type Stmt struct {
	r            *Router
	query        string
	mu           sync.Mutex
	prod, shadow *sql.Stmt
	closed       bool
}

// ErrStmtClosed is returned by a closed [Stmt].
var ErrStmtClosed = errors.New("slsql: statement is closed")

func (s *Stmt) stmt(ctx context.Context) (*sql.Stmt, error) {
	db := s.r.DB(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStmtClosed
	}
	p := &s.prod
	if db == s.r.shadow {
		p = &s.shadow
	}
	if *p == nil {
		st, err := db.PrepareContext(ctx, s.query)
		if err != nil {
			return nil, err
		}
		*p = st
	}
	return *p, nil
}

func (s *Stmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *Stmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Close closes the statement on both pools.
func (s *Stmt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, st := range []*sql.Stmt{s.prod, s.shadow} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// BeginTx begins on the pool of ctx: a transaction begun marked stays shadow.
func (r *Router) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return r.DB(ctx).BeginTx(ctx, opts)
}

// Close closes both pools.
func (r *Router) Close() error {
	return errors.Join(r.prod.Close(), r.shadow.Close())
}
