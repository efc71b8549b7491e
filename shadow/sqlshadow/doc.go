// Package sqlshadow is the dialect-neutral half of SQL shadowing: the
// [Dialect] seam that the parser-backed rewriters in dialects/* implement,
// and the rules that decide, per table, whether load-test statements go to a
// shadow table, may read through to production, or are refused.
//
// # What a marked statement may do
//
// A marked (load-test) statement is parsed by its dialect, every table is
// renamed to its shadow, and the statement is refused with a
// [*shadow.Error] when the parser cannot see everything it does:
//
//   - DDL, EXPLAIN, CALL, COPY, LOAD DATA, PREPARE/EXECUTE, SELECT INTO,
//     USE and the like ([shadow.ErrUnsupported]); text the parser rejects.
//   - Functions. A parser cannot see inside a function, so a marked
//     statement may call only functions known to be side-effect free: the
//     built-ins on each dialect's allow-list, generated from the server's
//     own catalog (dialects/*/funcs_gen.go, `go generate`, and a test that
//     regenerates it against the real server and diffs): PostgreSQL 15
//     pg_catalog functions whose overloads are all immutable or stable
//     minus a denylist (set_config, advisory locks, large objects, dblink,
//     *_to_xml, file readers, ...) plus a few harmless volatile ones
//     (random, clock_timestamp, gen_random_uuid); MariaDB 10.11 native
//     functions from its help tables, each confirmed on the server, minus
//     locks, SLEEP, BENCHMARK, LOAD_FILE and replication waits; SQLite
//     functions the library flags innocuous. Any other function (every user
//     function, schema-qualified calls outside pg_catalog, OPERATOR(s.op))
//     is refused with [shadow.ErrUnsupported] naming it, unless
//     [WithFunctions] maps it to a shadow twin (renamed in the statement,
//     like a table) or [WithReadOnlyFunctions] vouches for it.
//   - Sequences named in strings. PostgreSQL nextval/setval/currval('name')
//     and 'name'::regclass, and MariaDB NEXTVAL(seq)/SETVAL/LASTVAL and NEXT
//     VALUE FOR seq, name a sequence (relation): it is renamed with the
//     same rules as a table, so under the default suffix naming the shadow
//     of orders_id_seq is orders_id_seq_shadow (the shadow of the
//     sequence object is the sequence name run through the table naming;
//     shadow-schema tooling must create sequences under that name).
//     nextval and setval count as writes (a read-through sequence is never
//     advanced). A sequence argument that is not a plain string literal
//     (nextval($1), nextval(pg_get_serial_sequence(...)), E'...') is refused.
//   - Session state. A statement that changes its connection beyond itself
//     would change how later production statements on the same pooled
//     connection behave, so it is refused: SET / SET SESSION / RESET,
//     set_config(..., false), SET ROLE, SET SESSION AUTHORIZATION, SET
//     NAMES, MySQL user variables (SET @x, SELECT @x := ..., SELECT ...
//     INTO @x), LAST_INSERT_ID(expr), LOCK TABLES, temporary tables, PREPARE
//     (named statements), LISTEN, DISCARD, PRAGMA. PostgreSQL SET LOCAL,
//     set_config(..., true) and SET TRANSACTION end with their transaction
//     and are allowed (outside a transaction they do nothing).
//   - Executable comments. MySQL runs /*! ... */ and /*!50100 ... */ and
//     MariaDB /*M! ... */ as code; the rewrite (which drops comments) could
//     not shadow them, so marked statements holding one are refused. The
//     unmarked guard scans their contents for shadow names.
//   - System catalogs (information_schema, performance_schema, mysql, sys;
//     pg_catalog and unqualified pg_* relations; sqlite_schema and kin) are
//     read in place, unrenamed; writes to them are refused
//     ([shadow.ErrBlocked]).
//
// What still cannot be seen: the body of a function declared read-only or
// of a twin; triggers, rules and column defaults on shadow tables (they
// must write shadow tables only: the shadow-schema tooling copies them);
// user-defined operators, casts and type input functions (PostgreSQL)
// reached without an explicit OPERATOR(schema.op); and, on PostgreSQL, a
// user function in a schema searched before pg_catalog that overloads a
// built-in name. `shadowlane check` compares shadow tables with production
// and, in database mode, reports the shadow user's privileges.
//
// # Database mode
//
// With [WithDatabase] nothing is renamed (marked work runs on a separate
// shadow database or schema), but marked statements are still parsed with
// the same refusals, and any table qualified with a database or schema
// other than the listed shadow ones is refused: a marked INSERT INTO
// proddb.orders or DROP TABLE proddb.orders never reaches the server.
//
// # Cost
//
// Decisions are cached per statement text. A cache hit costs one lock-free
// map lookup and counter increments, without allocating; an unmarked
// statement costs one case-insensitive substring scan for the shadow affix.
// The cache is bounded ([WithCacheSize], default 4096) and evicts one entry
// at a time with CLOCK, an approximation of LRU; concurrent misses on the
// same text parse it once.
package sqlshadow
