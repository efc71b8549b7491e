// Package funcgen generates the PostgreSQL allow-list of functions that
// load-test statements may call: every function of pg_catalog whose
// overloads are all immutable or stable, minus a denylist of catalog
// functions with effects beyond the statement (or that read arbitrary
// tables by name), plus a few volatile functions known to be side-effect
// free (random, clock_timestamp, gen_random_uuid, ...).
package funcgen

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/shadowlane/shadowlane/internal/funclist"
)

// Denied are prefixes of pg_catalog function names never allowed for
// load-test statements, whatever their volatility: they take locks that
// outlive the statement, change settings, write large objects, reach other
// servers, read files, or run/read arbitrary queries and tables given by
// name (which would read production data behind the rewrite's back).
var Denied = []string{
	"set_config", "pg_advisory_", "pg_try_advisory_", "lo_", "dblink",
	"nextval", "setval", "currval",
	"query_to_xml", "cursor_to_xml", "table_to_xml", "schema_to_xml", "database_to_xml",
	"ts_stat", "ts_rewrite",
	"pg_read_", "pg_ls_", "pg_stat_file", "pg_notify", "pg_sleep",
	"pg_logical_emit_message", "pg_stat_reset", "pg_export_snapshot",
	"pg_import_system_collations", "pg_event_trigger_",
	"binary_upgrade_",
}

// Volatile are volatile pg_catalog functions that change nothing outside
// their result: allowed although the catalog says volatile.
var Volatile = []string{
	"random", "clock_timestamp", "timeofday", "gen_random_uuid", "lastval",
	"uuid_generate_v4", "txid_current", "pg_current_xact_id",
}

// Generator generates the list from a PostgreSQL server's catalog.
var Generator = funclist.Generator{
	Package: "postgres", Driver: "pgx", DSNEnv: "SHADOWLANE_PG_DSN", DefaultDSN: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	ServerDoc: "the server the list was generated from",
	Doc: []string{"safeFuncs are the pg_catalog functions load-test statements may call:",
		"every overload immutable or stable, not denied (see internal/funcgen)."},
	Read: read,
}

// read reads the list from db's pg_catalog.pg_proc.
func read(ctx context.Context, db *sql.DB) (funclist.List, error) {
	var major int
	if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		return funclist.List{}, err
	}
	var names []string
	err := funclist.Each(ctx, db, `SELECT p.proname, bool_and(p.provolatile <> 'v')
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'pg_catalog' GROUP BY p.proname`, func(rows *sql.Rows) error {
		var name string
		var stable bool
		if err := rows.Scan(&name, &stable); err != nil {
			return err
		}
		if !denied(name) && (stable || contains(Volatile, name)) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return funclist.List{}, err
	}
	return funclist.List{From: fmt.Sprintf("PostgreSQL %d's pg_catalog.pg_proc", major), Server: major, Names: names}, nil
}

func denied(name string) bool {
	for _, p := range Denied {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
