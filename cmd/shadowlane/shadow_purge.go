package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/shadowlane/shadowlane/shadow"
)

// purgeSQL counts and, with yes, deletes load-test rows from the twins of
// tables. With run, only rows whose runCol equals run (tables without the
// column are skipped and said so); without run, every row of every twin.
// It refuses a name that is not a shadow name or is not a table.
func purgeSQL(ctx context.Context, db *sql.DB, driver string, tables []string, naming shadow.Naming, run, runCol string, yes bool, stdout, stderr io.Writer) int {
	label := inspectors[driver].label
	quote := qPG
	if driver == "mysql" {
		quote = qMy
	}
	type job struct{ twin, where string }
	var jobs []job
	var args [][]any
	for _, t := range tables {
		twin, ok := purgeTwin(naming, t)
		if !ok {
			fmt.Fprintf(stderr, "shadowlane shadow purge: refusing %q: not a shadow name\n", twin)
			return exitViolation
		}
		isTable, cols, err := purgeColumns(ctx, db, driver, twin)
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: %s: %s: %v\n", label, twin, err)
			return exitSetup
		}
		if !isTable {
			fmt.Fprintf(stdout, "%s %s: no such shadow table, skipped\n", label, twin)
			continue
		}
		where, a := "", []any(nil)
		if run != "" {
			if !cols[strings.ToLower(runCol)] {
				fmt.Fprintf(stdout, "%s %s: no %s column, skipped (its rows cannot be told apart by run; use --all to empty it)\n", label, twin, runCol)
				continue
			}
			ph := "?"
			if driver == "pgx" {
				ph = "$1"
			}
			where, a = " WHERE "+quote(runCol)+" = "+ph, []any{run}
		}
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quote(twin)+where, a...).Scan(&n); err != nil {
			fmt.Fprintf(stderr, "shadowlane shadow purge: %s: %s: %v\n", label, twin, err)
			return exitSetup
		}
		verb := "would delete"
		if yes {
			verb = "deleting"
		}
		fmt.Fprintf(stdout, "%s %s: %s %d row(s)\n", label, twin, verb, n)
		jobs = append(jobs, job{twin, where})
		args = append(args, a)
	}
	if !yes {
		if len(jobs) > 0 {
			fmt.Fprintln(stdout, "dry run: nothing deleted; add --yes to delete")
		}
		return exitOK
	}
	// Delete children before parents: retry the tables a foreign key held
	// back until a round makes no progress.
	pending := make([]int, len(jobs))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		var next []int
		var lastErr error
		for _, i := range pending {
			if _, err := db.ExecContext(ctx, "DELETE FROM "+quote(jobs[i].twin)+jobs[i].where, args[i]...); err != nil {
				next, lastErr = append(next, i), err
			}
		}
		if len(next) == len(pending) {
			fmt.Fprintf(stderr, "shadowlane shadow purge: %s: %v\n", label, lastErr)
			return exitViolation
		}
		pending = next
	}
	fmt.Fprintf(stdout, "%s: purged %d shadow table(s)\n", label, len(jobs))
	return exitOK
}

// purgeTwin returns the twin of the production name and whether purge may
// empty it: not when name is itself a shadow name, nor when naming makes
// a twin that is not a shadow name or is name itself.
func purgeTwin(naming shadow.Naming, name string) (string, bool) {
	twin := naming.Shadow(name)
	return twin, naming.IsShadow(twin) && twin != name && !naming.IsShadow(name)
}

// purgeColumns reports whether name is a base table and its column names
// (lower case).
func purgeColumns(ctx context.Context, db *sql.DB, driver, name string) (bool, map[string]bool, error) {
	var rows [][]string
	var err error
	switch driver {
	case "mysql":
		var typ string
		if typ, err = myTableType(ctx, db, name); err != nil || typ != "BASE TABLE" {
			return false, nil, err
		}
		rows, err = queryStrings(ctx, db, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, name)
	case "pgx":
		var oid int64
		var kind string
		var ok bool
		if oid, _, kind, ok, err = pgRel(ctx, db, name); err != nil || !ok || (kind != "r" && kind != "p") {
			return false, nil, err
		}
		rows, err = queryStrings(ctx, db, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	default:
		var ok bool
		if _, ok, err = sqliteObject(ctx, db, "table", name); err != nil || !ok {
			return false, nil, err
		}
		rows, err = queryStrings(ctx, db, `SELECT name FROM pragma_table_info(?)`, name)
	}
	if err != nil {
		return false, nil, err
	}
	cols := map[string]bool{}
	for _, r := range rows {
		cols[strings.ToLower(r[0])] = true
	}
	return true, cols, nil
}

// purgeRedis counts (SCAN) and, with yes, deletes every key under the
// shadow prefix. Keys carry no run id, so only --all touches them.
func purgeRedis(ctx context.Context, addr string, naming shadow.Naming, all, yes bool, stdout, stderr io.Writer) int {
	if !all {
		fmt.Fprintln(stdout, "redis: shadow keys carry no run id: skipped (use --all to delete them)")
		return exitOK
	}
	if naming.Prefix == "" {
		fmt.Fprintln(stderr, "shadowlane shadow purge: redis: a key naming without a prefix cannot be scanned safely")
		return exitUsage
	}
	c, err := redisClient(addr)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow purge: redis:", err)
		return exitUsage
	}
	defer c.Close()
	match := globEscape(naming.Prefix) + "*"
	n, deleted := 0, int64(0)
	var batch []string
	flush := func() error {
		if len(batch) == 0 || !yes {
			batch = batch[:0]
			return nil
		}
		d, err := c.Unlink(ctx, batch...).Result()
		deleted += d
		batch = batch[:0]
		return err
	}
	it := c.Scan(ctx, 0, match, 1000).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		if !naming.IsShadow(k) {
			fmt.Fprintf(stderr, "shadowlane shadow purge: redis: refusing %q: not a shadow key\n", k)
			return exitViolation
		}
		n++
		batch = append(batch, k)
		if len(batch) >= 500 {
			if err := flush(); err != nil {
				fmt.Fprintln(stderr, "shadowlane shadow purge: redis:", err)
				return exitSetup
			}
		}
	}
	if err := it.Err(); err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow purge: redis:", err)
		return exitSetup
	}
	if err := flush(); err != nil {
		fmt.Fprintln(stderr, "shadowlane shadow purge: redis:", err)
		return exitSetup
	}
	if yes {
		fmt.Fprintf(stdout, "redis: deleted %d shadow key(s) (%s*)\n", deleted, naming.Prefix)
	} else {
		fmt.Fprintf(stdout, "redis: would delete %d shadow key(s) (%s*); add --yes to delete\n", n, naming.Prefix)
	}
	return exitOK
}

// globEscape escapes the SCAN MATCH glob characters of s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
