package everywhere

import "database/sql"

func noCtx(db *sql.DB) {
	db.Exec("SELECT 1") // want `\(\*sql.DB\).Exec has no context, so the shadowlane mark is lost: use ExecContext\(ctx, ...\)`
}

func init() {
	var db *sql.DB
	db.Exec("SELECT 1") // fine even with -everywhere
}
