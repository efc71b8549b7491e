package sqlshadow

import "errors"

// Table is one table reference as written in a statement. Schema is empty
// when the reference is not qualified.
type Table struct {
	Schema string
	Name   string
}

func (t Table) String() string { return qualified(t.Schema, t.Name) }

// qualified returns name, qualified with schema unless schema is empty.
func qualified(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// Kind classifies a statement.
type Kind uint8

const (
	KindRead  Kind = iota // SELECT, SHOW-like reads, WITH ... SELECT
	KindWrite             // INSERT, REPLACE, UPDATE, DELETE, MERGE, SELECT ... FOR UPDATE, LOCK
	KindDDL               // CREATE, ALTER, DROP, TRUNCATE, GRANT, EXPLAIN, CALL, COPY, SELECT INTO, USE...: refused for marked traffic
	KindOther             // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, session SET...: no tables involved
)

func (k Kind) String() string {
	switch k {
	case KindRead:
		return "read"
	case KindWrite:
		return "write"
	case KindDDL:
		return "ddl"
	}
	return "other"
}

// Use is one table a statement touches; Write is true when the statement
// writes to it (INSERT/REPLACE/UPDATE/DELETE target, SELECT ... FOR UPDATE).
// A sequence named in a string (PostgreSQL nextval('orders_id_seq'),
// 'orders_id_seq'::regclass) is a Use too, written by nextval and setval:
// it is renamed with the same rules as tables (see the package
// documentation).
type Use struct {
	Table Table
	Write bool
}

// Func is one function a statement calls. Schema is empty when the call is
// not qualified.
type Func struct {
	Schema string
	Name   string
	// Safe is true when the dialect knows the function as a built-in
	// without side effects: it is on the allow-list generated from the
	// server's catalog (see each dialect's funcs_gen.go).
	Safe bool
}

func (f Func) String() string { return qualified(f.Schema, f.Name) }

// FuncRenameFunc returns the name to call in place of f (f.Name keeps the
// call as written). Returning an error aborts the rewrite with that error.
type FuncRenameFunc func(f Func) (string, error)

// FuncDialect is implemented by dialects that can rename function calls
// (to shadow twins). All dialects of this repository implement it; a
// [Rewriter] on a dialect without it refuses marked statements that call
// a function mapped to a twin.
type FuncDialect interface {
	Dialect
	// RewriteFuncs is Rewrite that also asks funcs for the name of every
	// function call reported in Result.Funcs (nil funcs keeps them).
	RewriteFuncs(query string, rename RenameFunc, funcs FuncRenameFunc) (Result, error)
}

// RenameFunc returns the name to write in place of t (the bare table name;
// the dialect keeps any schema qualifier and quotes as the dialect needs).
// Returning an error aborts the rewrite with that error.
type RenameFunc func(t Table, write bool) (string, error)

// Result is what a dialect found in and did to a statement.
type Result struct {
	SQL    string // the rewritten statement (equal to the input when nothing was renamed)
	Kind   Kind
	Tables []Use // every real table referenced (aliases and CTE names excluded), in order of appearance, deduplicated by (table, write)
	// Funcs lists every function the statement calls (built-in or not,
	// except sequence functions whose sequence is reported in Tables),
	// in order of appearance, deduplicated.
	Funcs []Func
	// Session, when not empty, says how the statement changes the state of
	// its connection beyond itself (SET SESSION, SET ROLE, user variables,
	// LOCK TABLES, ...): later statements on the same pooled connection,
	// production ones included, would inherit it.
	Session string
	// ExecComments holds the contents of executable comments (MySQL /*!
	// ... */ and /*!50100 ... */, MariaDB /*M! ... */), which the server
	// runs as code.
	ExecComments []string
	// Verified, when not nil, is the analysis of SQL by the dialect's own
	// re-parse of the rewritten statement: exactly what Rewrite(SQL, nil)
	// returns (Verified itself nil). The [Rewriter] checks the rewritten
	// statement against it instead of parsing SQL once more. A dialect that
	// did not parse SQL itself leaves it nil, and the Rewriter re-parses.
	Verified *Result
}

// Dialect parses and rewrites statements of one SQL dialect. Implementations
// live in their own modules (dialects/mysql, dialects/postgres,
// dialects/sqlite) because real parsers are heavy. They must be safe for
// concurrent use.
type Dialect interface {
	// Name is "mysql", "postgres" or "sqlite".
	Name() string
	// Rewrite parses query (one statement; a trailing semicolon is allowed)
	// and renames every table reference with rename: FROM/JOIN, subqueries,
	// INSERT ... SELECT, REPLACE, ON DUPLICATE KEY, UPDATE/DELETE with joins,
	// qualified column references (orders.id -> orders_shadow.id when the
	// table is referenced by its own name), schema-qualified names. Aliases
	// and CTE names are never renamed. A nil rename only analyses (Result.SQL
	// is then the input). A statement the parser rejects, or that holds
	// several statements, returns an error wrapping ErrParse.
	Rewrite(query string, rename RenameFunc) (Result, error)
}

// ErrParse is wrapped by dialects when a statement cannot be parsed or holds
// more than one statement.
var ErrParse = errors.New("sql statement not understood")
