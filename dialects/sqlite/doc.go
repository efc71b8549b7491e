// Package sqlite is the SQLite dialect of shadowlane's SQL shadowing: a
// [sqlshadow.Dialect] that finds and renames every table reference of a
// SQLite statement.
//
// It covers the statements applications send: SELECT (joins, subqueries,
// compound selects, WITH and WITH RECURSIVE, window clauses, VALUES),
// INSERT/REPLACE (VALUES, SELECT, DEFAULT VALUES, ON CONFLICT upserts,
// RETURNING), UPDATE (with FROM, RETURNING) and DELETE, plus transaction
// control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE). DDL, PRAGMA,
// ATTACH and the like are recognised as [sqlshadow.KindDDL] so load-test
// traffic is refused; so is EXPLAIN [QUERY PLAN], whose statement is parsed
// so the guard sees its tables, but which is never rewritten. Anything else is a parse error, which load-test
// traffic also gets refused for: the parser never guesses.
//
// Renamed: table names in FROM/JOIN, INSERT INTO, UPDATE, DELETE FROM,
// "x IN table", and the table part of qualified columns (orders.id,
// main.orders.id) when the table is referenced by its own name. Never
// renamed: aliases, CTE names, the upsert pseudo-table "excluded", and the
// JSON table-valued functions json_each, json_tree, jsonb_each and
// jsonb_tree called with arguments ("FROM orders, json_each(orders.doc)").
// Every other table-valued function or eponymous virtual table (pragma_*,
// dbstat, sqlite_dbpage, generate_series, ...) is a parse error, so
// load-test traffic is refused, never renamed; so is a JSON one named bare
// ("FROM orders, json_each"), because SQLite lets a real table of that name
// win over the function and the parser cannot see the schema. A
// qualifier that names nothing in scope, or a body naming a CTE defined
// later in the same WITH, fails closed.
//
// # Functions
//
// Every function call (a name followed by "(" in an expression) is
// reported in Result.Funcs and can be renamed to a twin; Safe when the
// name is on the allow-list generated from the pragma_function_list of the
// SQLite compiled into modernc.org/sqlite (funcs_gen.go): the functions
// SQLite flags SQLITE_INNOCUOUS and not SQLITE_DIRECTONLY, minus
// load_extension and kin. Application functions registered with the driver
// are refused for load-test traffic unless declared read-only or mapped to
// a twin. sqlite_schema, sqlite_sequence and the stat tables are catalogs:
// read in place, never written. PRAGMA, ATTACH and temporary tables are
// KindDDL (refused).
//
// # Why a parser of our own
//
// The pure-Go SQLite parser we wanted (github.com/rqlite/sql, and its forks)
// cannot be fetched through the Go module proxy this project builds with;
// the remaining pure-Go parsers speak MySQL (they reject RETURNING, ON
// CONFLICT and double-quoted identifiers that gorm's SQLite driver emits)
// and the PostgreSQL one is cgo. This package is a small tokenizer and a
// recursive-descent parser for SQLite's DML grammar, strict on clause
// structure. Its output is checked against the real SQLite engine
// (modernc.org/sqlite) in the tests: every rewritten statement prepares
// against a database that only holds shadow tables.
package sqlite
