// Package mysql is the MySQL/MariaDB [sqlshadow.Dialect]: it renames every
// table a statement references so that load-test traffic reads and writes
// shadow tables, and classifies the statement for the caller's decision.
//
// # Parser
//
// Statements are parsed by github.com/pingcap/tidb/pkg/parser, the
// MySQL-compatible yacc parser maintained by PingCAP for TiDB: pure Go (no
// cgo), released continuously, used by many SQL tools, with a complete AST
// and a Restore method that writes a tree back as SQL. The vitess parser was
// the other candidate; it lives inside the whole vitess module (a far larger
// dependency graph) and its AST is tuned to vitess's own routing needs.
//
// # How statements are rewritten
//
// The statement is parsed once and table references are renamed in the
// tree. A statement in plain lexical terms (names, `quoted names`, '...'
// strings without backslashes, numbers, ? placeholders, operators; no
// comments) whose renamed names each match as many tokens of the text as
// the tree has sites for them is rewritten in place: the new names are
// written, in backquotes, over those tokens and the rest of the text is
// kept as written (see inplace.go for why that needs no second parse).
// Any other statement takes the general path: the tree is restored with
// backquoted identifiers, single-quoted strings with backslashes escaped
// and upper-case keywords, valid on MySQL 5.7/8 and MariaDB 10+ under the
// default sql_mode. Comments are dropped and spacing is normalised; ?
// placeholders are kept in order. Share locks (LOCK IN SHARE MODE, FOR
// SHARE) are written as FOR UPDATE there, because MariaDB has no FOR SHARE
// and the restorer cannot write the older form.
//
// Renamed: tables in FROM and JOIN, subqueries and derived tables, INSERT
// and REPLACE targets (with SELECT), ON DUPLICATE KEY UPDATE, multi-table
// UPDATE and DELETE (a DELETE target list naming a table follows its table;
// one naming an alias stays), SELECT ... FOR UPDATE OF, LOCK TABLES, SHOW
// ... FROM t, and column qualifiers that name a table referenced by its own
// name (orders.id, shop.orders.id, orders.*). Schema qualifiers are kept.
// Never renamed: aliases, derived-table names and CTE names, scoped as MySQL
// scopes them (a non-recursive CTE is not visible inside its own body, so in
// WITH orders AS (SELECT * FROM orders) ... the inner orders is the real
// table and is renamed).
//
// Every rewrite of the general path is re-parsed and the tables it
// references are checked against the renamed ones (an in-place rewrite
// checks the renamed tree, which is what its text parses to); a mismatch
// is refused with an error wrapping [sqlshadow.ErrParse]. So are statements the parser rejects and text
// holding more than one statement.
//
// MariaDB's INSERT/REPLACE/DELETE ... RETURNING, which gorm's MySQL driver
// sends to MariaDB 10.5+ for every Create, is not in the TiDB grammar. A
// trailing RETURNING list of plain column names or * (it can name no
// table) is set aside, the statement is rewritten, and the list is
// appended unchanged; other RETURNING lists are analysed (see below).
//
// # Kinds
//
// SELECT, UNION and SHOW are reads; INSERT, REPLACE, UPDATE, DELETE, LOCK
// TABLES and locking reads (FOR UPDATE, LOCK IN SHARE MODE) are writes.
// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, session SET, DO and UNLOCK TABLES are
// KindOther (KindRead when they read a table in a subquery). Everything
// else is KindDDL, returned unchanged for the caller to refuse: real DDL,
// GRANT, every EXPLAIN/DESCRIBE (EXPLAIN ANALYZE runs its statement), and
// statements whose effects cannot be seen or shadowed (CALL, LOAD DATA,
// HANDLER, PREPARE/EXECUTE, SELECT ... INTO anywhere in the statement, USE
// and SET GLOBAL, which change state that production statements on the
// same connection or server would inherit).
//
// Table writes: the target of INSERT/REPLACE; of a single-table UPDATE or
// DELETE; in a multi-table UPDATE the tables whose columns are assigned (all
// of them when an assignment is unqualified); in a multi-table DELETE the
// listed targets; every table of a locking read.
//
// # Functions, sequences, session state, executable comments
//
// Every FuncCallExpr is reported in Result.Funcs and can be renamed to a
// twin; Safe when unqualified and on the allow-list generated from MariaDB
// 10.11 (funcs_gen.go: the function topics of the server's help tables,
// each confirmed native by calling it on the server, minus GET_LOCK,
// RELEASE_LOCK, SLEEP, BENCHMARK, LOAD_FILE, replication waits and the
// sequence functions), or one of the names the parser gives built-in
// syntax (DATE_ADD, EXTRACT, POSITION, CHAR, IF, ...). Aggregates and
// window functions are grammar, hence built-in. Schema-qualified calls are
// user functions.
//
// NEXTVAL(seq), SETVAL(seq, n), LASTVAL(seq) and NEXT VALUE FOR seq take a
// sequence name, renamed like a table (NEXTVAL and SETVAL write it).
//
// Session state (Result.Session): every SET but SET GLOBAL (which is
// KindDDL) — session and system variables, user variables, NAMES,
// CHARACTER SET, even SET TRANSACTION, which applies to the connection's
// next transaction — user-variable assignment in expressions (@x := ...),
// LAST_INSERT_ID(expr) and LOCK TABLES. MySQL has no SET LOCAL.
//
// Executable comments (/*! ... */, /*!50100 ... */, /*M! ... */,
// /*M!100100 ... */) are returned in Result.ExecComments by
// [ExecComments], a lexer that skips strings, quoted names and ordinary
// comments as the server does; the parser treats some of them as plain
// comments (dropping code the server runs), so a statement holding one is
// never rewritten and sqlshadow refuses it for load-test traffic.
//
// MariaDB RETURNING with expressions, qualified columns or subqueries
// (RETURNING id + 1, orders.id, (SELECT ...)) on a single-table INSERT,
// REPLACE or DELETE is analysed as SELECT <list> FROM <target>: the list
// is renamed with the statement (orders.id -> orders_shadow.id) and its
// functions, subqueries and assignments are checked like any other, then
// written back after the restored statement.
//
// Not supported, refused for load-test traffic: JSON_TABLE (the TiDB
// grammar lacks it, so the statement does not parse) and SELECT ... INTO
// @v (it assigns session variables, which load-test statements may not do
// anyway; the grammar lacks it too).
//
// Rewrite is pure CPU work of tens of microseconds; callers cache results
// by statement text (sqlshadow does).
package mysql
