package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// checkShadowGrants reports, for database mode, what the shadow pool's
// user may do outside the shadow database: shadowlane refuses marked
// statements that name another database, but the strongest protection is
// a user that cannot touch production at all. Any such privilege is a
// violation (exit 1); an unreachable server is exitSetup.
func checkShadowGrants(ctx context.Context, mysqlDSN, pgDSN string, stdout, stderr io.Writer) int {
	code := exitOK
	if mysqlDSN != "" {
		code = worst(code, grantsMySQL(ctx, mysqlDSN, stdout, stderr))
	}
	if pgDSN != "" {
		code = worst(code, grantsPostgres(ctx, pgDSN, stdout, stderr))
	}
	return code
}

func openChecked(ctx context.Context, driver, dsn, label string, stderr io.Writer) *sql.DB {
	db, err := openDB(ctx, driver, dsn)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane check: %s shadow user: cannot connect: %v\n", label, err)
	}
	return db
}

// grantRE reads "GRANT <privileges> ON <scope> TO ...".
var grantRE = regexp.MustCompile(`(?is)^GRANT\s+(.*?)\s+ON\s+(\S+)\s+TO\s`)

func grantsMySQL(ctx context.Context, dsn string, stdout, stderr io.Writer) int {
	db := openChecked(ctx, "mysql", dsn, "mysql", stderr)
	if db == nil {
		return exitSetup
	}
	defer db.Close()
	var user string
	var shadowDB sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER(), DATABASE()").Scan(&user, &shadowDB); err != nil {
		fmt.Fprintf(stderr, "shadowlane check: mysql shadow user: %v\n", err)
		return exitSetup
	}
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane check: mysql shadow user: SHOW GRANTS: %v\n", err)
		return exitSetup
	}
	var grants []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			fmt.Fprintf(stderr, "shadowlane check: mysql shadow user: %v\n", err)
			return exitSetup
		}
		grants = append(grants, g)
	}
	rows.Close()
	fmt.Fprintf(stdout, "mysql shadow user %s (shadow database %s): privileges outside the shadow database\n", user, shadowDB.String)
	problems := mysqlGrantProblems(grants, shadowDB.String)
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %s\n", p)
	}
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "  fix: a shadow user with privileges on the shadow database only, e.g. GRANT SELECT, INSERT, UPDATE, DELETE ON `"+shadowDB.String+"`.* TO ...")
		return exitViolation
	}
	fmt.Fprintln(stdout, "  ok: none")
	return exitOK
}

// mysqlGrantProblems lists the grants that reach beyond shadowDB. Only
// USAGE (no privilege) is harmless on *.*.
func mysqlGrantProblems(grants []string, shadowDB string) []string {
	var out []string
	for _, g := range grants {
		m := grantRE.FindStringSubmatch(g)
		if m == nil {
			continue // GRANT PROXY, roles: not table privileges
		}
		privs, scope := strings.TrimSpace(m[1]), m[2]
		if strings.EqualFold(privs, "PROXY") {
			continue // lets a user act as another user: not a table privilege
		}
		db := scope
		if i := strings.Index(scope, "."); i >= 0 {
			db = scope[:i]
		}
		db = strings.ReplaceAll(strings.Trim(db, "`"), `\_`, "_")
		switch {
		case strings.EqualFold(privs, "USAGE"):
		case db == "*":
			out = append(out, fmt.Sprintf("%s on every database (%s)", privs, scope))
		case strings.ContainsAny(db, "%_") && db != shadowDB:
			out = append(out, fmt.Sprintf("%s on databases matching %s", privs, db))
		case !strings.EqualFold(db, shadowDB) && !strings.EqualFold(db, "information_schema"):
			out = append(out, fmt.Sprintf("%s on %s", privs, scope))
		}
	}
	return out
}

func grantsPostgres(ctx context.Context, dsn string, stdout, stderr io.Writer) int {
	db := openChecked(ctx, "pgx", dsn, "postgres", stderr)
	if db == nil {
		return exitSetup
	}
	defer db.Close()
	var role, current string
	var schema sql.NullString
	var super, bypass, createdb bool
	if err := db.QueryRowContext(ctx, `SELECT current_user, current_database(), current_schema(), r.rolsuper, r.rolbypassrls, r.rolcreatedb
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &current, &schema, &super, &bypass, &createdb); err != nil {
		fmt.Fprintf(stderr, "shadowlane check: postgres shadow role: %v\n", err)
		return exitSetup
	}
	fmt.Fprintf(stdout, "postgres shadow role %s (database %s, schema %s): privileges outside the shadow\n", role, current, schema.String)
	var problems []string
	if super {
		problems = append(problems, "the role is a superuser: it can do anything anywhere")
	}
	if bypass {
		problems = append(problems, "the role bypasses row-level security")
	}
	dbs, err := queryColumn(ctx, db, `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate
		AND datname <> current_database() AND has_database_privilege(datname, 'CONNECT') ORDER BY 1`)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane check: postgres shadow role: %v\n", err)
		return exitSetup
	}
	if len(dbs) > 0 {
		problems = append(problems, "may connect to other databases: "+strings.Join(dbs, ", ")+" (REVOKE CONNECT ON DATABASE ... FROM PUBLIC, and from the role)")
	}
	tabs, err := queryColumn(ctx, db, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname <> coalesce(current_schema(), '')
		AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') ORDER BY 1 LIMIT 21`)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane check: postgres shadow role: %v\n", err)
		return exitSetup
	}
	if len(tabs) > 0 {
		more := ""
		if len(tabs) > 20 {
			tabs, more = tabs[:20], ", ..."
		}
		problems = append(problems, "may write tables outside schema "+schema.String+": "+strings.Join(tabs, ", ")+more)
	}
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %s\n", p)
	}
	if len(problems) > 0 {
		fmt.Fprintln(stdout, "  fix: a role that owns only the shadow database/schema and has no privilege elsewhere")
		return exitViolation
	}
	fmt.Fprintln(stdout, "  ok: none")
	return exitOK
}
