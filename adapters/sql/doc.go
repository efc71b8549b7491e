// Package slsql shadows database/sql traffic for load tests.
//
// Table mode: [NewConnector] wraps a [driver.Connector] so every statement
// of a marked (load-test) context is rewritten by a [sqlshadow.Rewriter]
// onto shadow tables before it reaches the driver, and every unmarked
// statement is checked by the two-way guard. Statements refused by the
// rules fail with a [*shadow.Error]; they never run in production.
//
//	rw, _ := sqlshadow.New(sqlite.New())
//	db := slsql.OpenDB(base, rw)
//	db.ExecContext(propagation.With(ctx, mark), "INSERT INTO orders ...") // -> orders_shadow
//
// A prepared statement remembers its text: prepared unmarked and executed
// with a marked context, it is prepared again with the shadow text on the
// same connection (and the reverse), so the production text never runs for
// load-test traffic. A transaction begun with a marked context stays shadow
// for every statement run in it, whatever the statement's context says.
//
// The driver's own connection: (*sql.Conn).Raw hands over the wrapper,
// so pgx's CopyFrom or SQLite's backup API are out of reach through it.
// [Raw] hands production work the driver's connection (peeling the
// limiter's wrapper too) and refuses load-test work, by the context or by a
// transaction begun marked on the connection, with [shadow.ErrBlocked]:
// text sent through the driver's own API is never rewritten.
//
// Database mode: a [Router] holds the production and the shadow *sql.DB and
// hands out the shadow one for marked contexts. It needs no parser.
package slsql
