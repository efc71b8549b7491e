package slsql

import (
	"context"
	"database/sql/driver"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/lostmark"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]): an unmarked statement whose string or
// numeric literals or arguments look like load-test data is refused with a
// [*shadow.Error] wrapping [shadow.ErrLostMark] (or only reported, with
// testData.action: alert), counted under the dialect's store name
// ("sqlite", "postgres", "mysql"). It uses the runtime of [WithRuntime],
// else the default one (the one [shadowlane.Init] sets), looked up per
// statement. td is [conn.testData], checked by the caller on unmarked
// statements: without testData rules the guard costs one pointer load,
// inline.
func (c *conn) lostMark(ctx context.Context, td *shadowlane.TestData, query string, args []driver.NamedValue) error {
	rule, ok := td.MatchSQL(query)
	for i := 0; !ok && i < len(args); i++ {
		rule, ok = td.MatchValue(args[i].Value)
	}
	if !ok || lostmark.IsCounted(ctx) { // the gorm plugin above counted it (alert)
		return nil
	}
	err := shadowlane.OrDefault(c.rt).LostMark(c.rw.Dialect().Name(), Kind(query), rule)
	if err == nil {
		// alert: a driver that answers driver.ErrSkip makes database/sql
		// prepare the same statement next; count it once.
		c.alerted = query
	}
	return err
}

// lostMarkStmt is lostMark for a prepared statement's execution.
func (c *conn) lostMarkStmt(ctx context.Context, td *shadowlane.TestData, query string, args []driver.NamedValue) error {
	if c.alerted != "" && c.alerted == query {
		c.alerted = ""
		return nil
	}
	if c.rw == nil || c.mark(ctx).Run != "" { // limiting alone: no dialect, no guard
		return nil
	}
	return c.lostMark(ctx, td, query, args)
}

// testData is the lost-mark guard's matcher of the wrapper's runtime, nil
// when testData is not configured (inlined at the call).
func (c *conn) testData() *shadowlane.TestData { return shadowlane.OrDefault(c.rt).TestData() }
