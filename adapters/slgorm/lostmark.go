package slgorm

import (
	"context"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/lostmark"
	"github.com/shadowlane/shadowlane/shadow"
)

// testData is the lost-mark guard's matcher of the plugin's runtime, nil
// when testData is not configured (inlined at the call).
func (p *Plugin) testData() *shadowlane.TestData { return shadowlane.OrDefault(p.rt).TestData() }

// decisions is the series of the plugin's runtime.
func (p *Plugin) decisions() *shadow.Series { return shadowlane.OrDefault(p.rt).Decisions() }

// lostMark is the lost-mark guard of gorm statements (config testData:,
// see [shadowlane.TestDataConfig]), run on every statement the plugin
// sends to production (unmarked, outside a transaction begun marked): one
// whose string or numeric literals or arguments look like load-test data
// is refused with a [*shadow.Error] wrapping [shadow.ErrLostMark], or only
// reported with testData.action: alert, counted under the store name (the
// dialect's, or the shadow database's dialector in database mode) with the
// statement's table ("raw" for Raw/Exec without one). gorm opens its own database/sql pool, so slsql's guard
// does not see these statements unless that pool is slsql's too (zero-code
// wiring wraps both): then an alerted statement is counted here only.
// td is [Plugin.testData], checked by the caller: without testData rules the
// guard costs one pointer load, inline.
func (s *stmtPool) lostMark(ctx context.Context, td *shadowlane.TestData, query string, args []any) (context.Context, error) {
	rule, ok := td.MatchSQL(query)
	for i := 0; !ok && i < len(args); i++ {
		rule, ok = td.MatchValue(args[i])
	}
	if !ok {
		return ctx, nil
	}
	target := s.table
	if target == "" {
		target = "raw"
	}
	if err := shadowlane.OrDefault(s.p.rt).LostMark(s.p.store, target, rule); err != nil {
		return ctx, err
	}
	return lostmark.Counted(ctx), nil
}
