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

type config struct {
	rt      *shadowlane.Runtime
	l       *limiter.Limiter
	limit   bool
	failure func(error) bool
}

func newConfig(opts []Option) *config {
	cfg := &config{failure: IsFailure}
	for _, o := range opts {
		o.apply(cfg)
	}
	return cfg
}

// Option configures [NewConnector] and [OpenDB].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithRuntime names the runtime the wrapper works for: the lost-mark
// guard's testData rules and catches, the decisions slsql counts itself
// ([Raw]'s blocks, a [Router]'s redirects), and the limiter [WithLimits]
// admits statements through (rules from its "limits:" config section).
// The default is the default runtime, looked up per statement. The
// Rewriter counts its own decisions where it was told
// ([sqlshadow.WithDecisions]; pass func() *shadow.Series { return
// rt.Decisions() } for the same runtime).
func WithRuntime(rt *shadowlane.Runtime) Option {
	return optionFunc(func(c *config) { c.rt = rt })
}

// WithLimits turns limiting on: every statement is admitted through the
// runtime's flow limiter (see [WithRuntime]) under the resource
// "sql:<KIND>" ("sql:SELECT", "sql:INSERT", ...; see [Kind]).
func WithLimits() Option {
	return optionFunc(func(c *config) { c.limit = true })
}

// WithLimiter turns limiting on with l instead of the runtime's limiter.
func WithLimiter(l *limiter.Limiter) Option {
	return optionFunc(func(c *config) { c.l, c.limit = l, l != nil || c.limit })
}

// WithFailure decides which statement errors count as failures for
// breakers and metrics (default [IsFailure]).
func WithFailure(fn func(error) bool) Option {
	return optionFunc(func(c *config) {
		if fn != nil {
			c.failure = fn
		}
	})
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

// limits admits the statements of one connector. A refused statement is
// not sent: it fails with the *limiter.BlockError (errors.Is(err,
// limiter.ErrBlocked)). A query is exited when the driver returns its rows,
// so a concurrency rule bounds statements waiting for the database, not
// rows being read. Prepared statements are admitted per execution, under
// the kind of their text. An admitted statement adds no allocation.
type limits struct {
	l   *limiter.Limiter // nil: the runtime's, looked up per statement
	rt  *shadowlane.Runtime
	cfg *config
	res atomic.Pointer[kindResources]
}

func newLimits(cfg *config) *limits {
	lm := &limits{l: cfg.l, rt: cfg.rt, cfg: cfg}
	if cfg.l != nil {
		lm.res.Store(newKindResources(cfg.l))
	}
	return lm
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

// resource returns the handle of kind k.
func (c *limits) resource(k int) *limiter.Resource {
	kr := c.res.Load()
	if c.l == nil {
		l := shadowlane.OrDefault(c.rt).Limiter()
		if kr == nil || kr.l != l {
			kr = newKindResources(l)
			c.res.Store(kr)
		}
	}
	return kr.res[k]
}

// exit ends an admitted statement; driver.ErrSkip (database/sql prepares
// instead and admits there) and non-failures exit clean.
func (c *limits) exit(tok limiter.Token, err error) {
	if err != driver.ErrSkip && c.cfg.failure(err) {
		tok.ExitErr(err)
	} else {
		tok.Exit()
	}
}
