// Package slsql shadows database/sql traffic for load tests.
//
// Table mode: [NewConnector] wraps a [driver.Connector] so every statement
// of a marked (load-test) context is rewritten by a [sqlshadow.Rewriter]
// onto shadow tables before it reaches the driver, and every unmarked
// statement is checked by the two-way guard. Statements refused by the
// rules fail with a [*shadow.Error]; they never run in production.
//
//	rw, err := sqlshadow.New(sqlite.New())
//	if err != nil {
//		return err
//	}
//	c, err := slsql.NewConnector(base, rw, slsql.WithRuntime(rt), slsql.WithLimits())
//	if err != nil {
//		return err
//	}
//	db := sql.OpenDB(c)
//	db.ExecContext(propagation.With(ctx, mark), "INSERT INTO orders ...") // -> orders_shadow
//
// The same wrapper limits, with [WithLimits] (the runtime's limiter) or
// [WithLimiter]: every statement is admitted under "sql:<KIND>" (see
// [Kind]) after it is rewritten, so a statement the rules refuse costs no
// budget.
//
// A prepared statement remembers its text: prepared unmarked and executed
// with a marked context, it is prepared again with the shadow text on the
// same connection (and the reverse), so the production text never runs for
// load-test traffic. A transaction begun with a marked context stays shadow
// for every statement run in it, whatever the statement's context says.
//
// The driver's own connection: (*sql.Conn).Raw hands over the wrapper,
// so pgx's CopyFrom or SQLite's backup API are out of reach through it.
// [Raw] hands production work the driver's connection and refuses load-test work, by the context or by a
// transaction begun marked on the connection, with [shadow.ErrBlocked]:
// text sent through the driver's own API is never rewritten.
//
// A marked statement whose shadow table does not exist fails with a
// [*shadow.Error] wrapping [shadow.ErrNoShadowTarget] that names the table
// and how to create it, instead of the driver's raw error ([MapError]:
// PostgreSQL 42P01, MySQL 1146, SQLite "no such table").
//
// Database mode: a [Router] holds the production and the shadow pool and
// hands out the shadow one for marked contexts. [NewRouter] takes the
// shadow database's connector and a Rewriter built [sqlshadow.WithDatabase]:
// the shadow pool's connector parses every marked statement and refuses
// references to any other database or schema (INSERT INTO proddb.orders,
// DROP TABLE proddb.orders), DDL, unknown functions, session changes,
// executable comments and anything the dialect cannot parse, with a
// [*shadow.Error], before it reaches the server.
//
//	rw, _ := sqlshadow.New(mysql.New(), sqlshadow.WithDatabase("shop_shadow"))
//	shadowConn, _ := slsql.DSNConnector(prod.Driver(), "app@tcp(db)/shop_shadow")
//	r, _ := slsql.NewRouter("mysql", prod, shadowConn, rw)
//
// [NewUncheckedRouter] (two plain pools) is the explicit opt-out: it
// inspects nothing, so a marked statement naming production explicitly
// runs there if the shadow user may. The strongest protection in either
// case is a shadow user without privileges on production, which
// `shadowlane check --shadow-mysql/--shadow-postgres` reports.
package slsql
