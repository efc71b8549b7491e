// Package postgres is the PostgreSQL [sqlshadow.Dialect]: it renames every
// table a statement references so that load-test traffic reads and writes
// shadow tables, and classifies the statement for the caller's decision.
//
// # Parser
//
// Statements are parsed by github.com/pganalyze/pg_query_go/v6, which
// embeds libpg_query: the PostgreSQL 17 server's own grammar and scanner,
// maintained by pganalyze and tracking each PostgreSQL release. Whatever the
// server accepts, this parser accepts, with exact byte offsets for every
// name. It needs cgo (a C compiler at build time); a clean build compiles
// the bundled C sources once, about 70 s of wall time on a 2-core machine,
// then the build cache serves it. The pure-Go alternatives parse a
// different dialect (cockroachdb-parser is CockroachDB's grammar, and its
// standalone forks are unmaintained), which would let real PostgreSQL
// syntax be refused or, worse, misread.
//
// # How statements are rewritten
//
// The tree is walked for every RangeVar (table reference) and ColumnRef;
// names are then replaced in the original text at the byte offsets the
// parser reports, after checking with the server's scanner that the token
// there spells the name. Everything else (comments, $1 placeholders,
// spacing, quoting, casts, dollar-quoted strings) is kept exactly as
// written. A new name is written bare when PostgreSQL reads it back
// unchanged (lower case, no keyword) and double-quoted otherwise. Every
// rewrite is re-parsed and the tables it references are checked against
// the renamed ones; a mismatch is refused with an error wrapping
// [sqlshadow.ErrParse], as are statements the parser rejects and text
// holding more than one statement.
//
// Renamed: tables in FROM/JOIN (LATERAL too), subqueries, set operations,
// INSERT targets (with SELECT, ON CONFLICT, RETURNING), UPDATE ... FROM,
// DELETE ... USING, MERGE, LOCK TABLE, data-modifying CTEs, FOR UPDATE OF
// entries naming a table, and column qualifiers naming a table referenced
// by its own name (orders.id, public.orders.id, orders.*). Schema and
// catalog qualifiers are kept (public.orders -> public.orders_shadow) and
// passed to the RenameFunc. Never renamed: aliases, EXCLUDED, and CTE
// names, scoped as PostgreSQL scopes them (in a non-recursive WITH a CTE is
// not visible inside its own body, so in WITH orders AS (SELECT * FROM
// orders) ... the inner orders is the real table and is renamed).
//
// # Kinds
//
// SELECT, VALUES and TABLE are reads; INSERT, UPDATE, DELETE, MERGE, LOCK,
// locking reads (FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE) and any
// statement holding a data-modifying CTE are writes. BEGIN/COMMIT/ROLLBACK/
// SAVEPOINT, SET and SHOW are KindOther. Everything else is KindDDL,
// returned unchanged for the caller to refuse: real DDL, GRANT, every
// EXPLAIN in either syntax (EXPLAIN ANALYZE runs its statement), statements
// whose table effects cannot be seen or shadowed (CALL, DO, COPY,
// PREPARE/EXECUTE, DECLARE CURSOR, SELECT INTO, REFRESH MATERIALIZED VIEW,
// LISTEN, DISCARD).
//
// Session state: every SET/RESET that outlives its statement (SET, SET
// SESSION, RESET, RESET ALL, SET ROLE, SET SESSION AUTHORIZATION, SET TIME
// ZONE, SET SESSION CHARACTERISTICS) and set_config(..., false) (or with a
// non-constant is_local) are reported in Result.Session, and sqlshadow
// refuses them for load-test traffic: production statements on the same
// pooled connection would inherit them. SET LOCAL, SET TRANSACTION and
// set_config(..., true) end with their transaction and are allowed.
//
// Functions: every FuncCall is reported in Result.Funcs; Safe when it is
// unqualified or in pg_catalog and on the allow-list generated from
// PostgreSQL 15's pg_proc (funcs_gen.go; internal/funcgen holds the
// volatility filter and the denylist). OPERATOR(schema.op) outside
// pg_catalog is reported as an unsafe function. Unqualified user-defined
// operators, casts and type input functions are not seen.
//
// Sequences and relations named in strings: the first argument of
// nextval, setval and currval (a string literal, or one cast to regclass)
// and every 'name'::regclass literal is parsed as regclass input does
// (dots separate schema and name, unquoted parts fold to lower case) and
// renamed with the table rules; the literal is rewritten in place
// ('orders_id_seq' -> 'orders_id_seq_shadow'). nextval and setval write
// the sequence. A literal that cannot be renamed safely (E'...', $$...$$,
// three-part names) makes the statement an error.
//
// Table writes: INSERT/UPDATE/DELETE/MERGE targets (FROM, USING and MERGE
// sources are reads), every table of a locking read or LOCK.
//
// Known limits: relation names inside strings other than the ones above
// (to_regclass('orders'), format('... %I', 'orders') for dynamic SQL in a
// function) are not seen, and ON CONFLICT ON CONSTRAINT keeps the
// constraint name, which must therefore exist on the shadow table.
//
// Rewrite costs tens of microseconds (a cgo parse, a scan and a verifying
// re-parse); callers cache results by statement text (sqlshadow does).
package postgres
