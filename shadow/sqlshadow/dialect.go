package sqlshadow

import "errors"

// Table is one table reference as written in a statement. Schema is empty
// when the reference is not qualified.
type Table struct {
	Schema string
	Name   string
}

func (t Table) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
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
type Use struct {
	Table Table
	Write bool
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
