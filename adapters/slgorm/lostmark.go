package slgorm

import (
	"context"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/lostmark"
	"github.com/shadowlane/shadowlane/shadow"
)

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
// Without testData rules it costs one pointer load.
func (s *stmtPool) lostMark(ctx context.Context, query string, args []any) (context.Context, error) {
	if s.mark.Run != "" {
		return ctx, nil
	}
	rt := shadowlane.OrDefault(s.p.rt)
	td := rt.TestData()
	if td == nil {
		return ctx, nil
	}
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
	if err := rt.LostMark(s.p.store, target, rule); err != nil {
		return ctx, err
	}
	return lostmark.Counted(ctx), nil
}
