package sqlite

import (
	"strings"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Dialect is the SQLite [sqlshadow.Dialect]. The zero value is ready to use
// and safe for concurrent use.
type Dialect struct{}

// New returns the SQLite dialect.
func New() Dialect { return Dialect{} }

var _ sqlshadow.Dialect = Dialect{}

// Name returns "sqlite".
func (Dialect) Name() string { return "sqlite" }

// Rewrite implements [sqlshadow.Dialect].
func (d Dialect) Rewrite(query string, rename sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return d.RewriteFuncs(query, rename, nil)
}

// RewriteFuncs implements [sqlshadow.FuncDialect]: Rewrite that also
// renames function calls with funcs.
func (Dialect) RewriteFuncs(query string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	return rewrite(query, rename, funcs)
}

// funcOf is the function a call's name token names.
func funcOf(t token) sqlshadow.Func {
	f := sqlshadow.Func{Name: t.val}
	_, f.Safe = safeFuncs[strings.ToLower(t.val)]
	return f
}
