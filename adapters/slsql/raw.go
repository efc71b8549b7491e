package slsql

import (
	"context"
	"database/sql"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Raw runs f with the driver's own connection behind c, for production
// work the shadowing wrapper cannot pass through: pgx's CopyFrom
// (stdlib.Conn.Conn()), SQLite's backup API, any driver-specific method.
// Plain (*sql.Conn).Raw hands f the wrapper of [NewConnector], which
// exposes nothing of the driver; use this instead:
//
//	conn, _ := db.Conn(ctx)
//	defer conn.Close()
//	err := slsql.Raw(ctx, conn, func(dc any) error {
//		pc := dc.(*stdlib.Conn).Conn() // *pgx.Conn
//		_, err := pc.CopyFrom(ctx, pgx.Identifier{"orders"}, cols, rows)
//		return err
//	})
//
// The driver's connection runs text no rewriter sees, so Raw refuses
// load-test work: when ctx is marked, or when a transaction begun marked
// is open on the connection, f does not run and Raw returns a
// [*shadow.Error] wrapping [shadow.ErrBlocked] (counted as a block,
// target "raw"). Pass the request's context: a marked COPY must be written
// with ordinary statements, which are shadowed, or run on the shadow
// database ([Router]). A connection slsql does not wrap is handed over as
// it is.
func Raw(ctx context.Context, c *sql.Conn, f func(driverConn any) error) error {
	return c.Raw(func(dc any) error {
		base, err := unwrapDriverConn(ctx, dc)
		if err != nil {
			return err
		}
		return f(base)
	})
}

// unwrapDriverConn peels slsql's wrappers off dc, refusing when the
// shadowing wrapper serves load-test work.
func unwrapDriverConn(ctx context.Context, dc any) (any, error) {
	for {
		switch w := dc.(type) {
		case *conn:
			m := propagation.FromContext(ctx)
			if m.Run == "" {
				m = w.txMark
			}
			if m.Run != "" {
				store := "sql"
				if w.rw != nil {
					store = w.rw.Dialect().Name()
				}
				shadowlane.OrDefault(w.rt).Decisions().Record(m.Run, store, "raw", shadow.Block)
				return nil, shadow.Refuse(store, "raw", "the driver's own connection runs statements no rewriter sees; load-test work must use ordinary (shadowed) statements or the shadow database", m, shadow.ErrBlocked)
			}
			dc = w.base
		default:
			return dc, nil
		}
	}
}
