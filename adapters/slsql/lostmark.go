package slsql

import (
	"context"
	"database/sql/driver"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/lostmark"
	"github.com/shadowlane/shadowlane/propagation"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]): an unmarked statement whose string or
// numeric literals or arguments look like load-test data is refused with a
// [*shadow.Error] wrapping [shadow.ErrLostMark] (or only reported, with
// testData.action: alert), counted under the dialect's store name
// ("sqlite", "postgres", "mysql"). It uses the runtime of [WithRuntime],
// else the default one (the one [shadowlane.Init] sets), looked up per
// statement; without testData rules it costs one pointer load.
func (c *conn) lostMark(ctx context.Context, m propagation.Mark, query string, args []driver.NamedValue) error {
	if m.Run != "" || c.rw == nil { // limiting alone: no dialect, no guard
		return nil
	}
	rt := shadowlane.OrDefault(c.rt)
	td := rt.TestData()
	if td == nil {
		return nil
	}
	rule, ok := td.MatchSQL(query)
	for i := 0; !ok && i < len(args); i++ {
		rule, ok = td.MatchValue(args[i].Value)
	}
	if !ok || lostmark.IsCounted(ctx) { // the gorm plugin above counted it (alert)
		return nil
	}
	err := rt.LostMark(c.rw.Dialect().Name(), Kind(query), rule)
	if err == nil {
		// alert: a driver that answers driver.ErrSkip makes database/sql
		// prepare the same statement next; count it once.
		c.alerted = query
	}
	return err
}

// lostMarkStmt is lostMark for a prepared statement's execution.
func (c *conn) lostMarkStmt(ctx context.Context, query string, args []driver.NamedValue) error {
	if c.alerted != "" && c.alerted == query {
		c.alerted = ""
		return nil
	}
	return c.lostMark(ctx, c.mark(ctx), query, args)
}
