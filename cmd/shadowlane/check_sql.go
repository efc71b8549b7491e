package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/shadowlane/shadowlane/internal/cfgfile"
	"github.com/shadowlane/shadowlane/shadow"
)

// sqlCheckFlags are the database flags of `shadowlane check`: which
// databases to connect to, which production tables to look at, and how
// their shadow twins are named.
type sqlCheckFlags struct {
	mysql, postgres, sqlite string
	tables                  string
	prefix, suffix          string
	timeout                 time.Duration
	// database mode: DSNs of the shadow pool's user, whose privileges on
	// production are reported
	shadowMySQL, shadowPostgres string
}

func registerSQLCheckFlags(fs *flag.FlagSet) *sqlCheckFlags {
	f := &sqlCheckFlags{}
	fs.StringVar(&f.mysql, "mysql", "", "MySQL/MariaDB DSN (go-sql-driver form, e.g. user@tcp(127.0.0.1:3306)/shop) whose shadow tables to check")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL DSN (e.g. postgres://user@127.0.0.1:5432/shop) whose shadow tables to check; tables are looked up on the search_path")
	fs.StringVar(&f.sqlite, "sqlite", "", "SQLite database file whose shadow tables to check")
	fs.StringVar(&f.tables, "tables", "", "comma-separated production tables to check (needed with --mysql, --postgres or --sqlite)")
	fs.StringVar(&f.prefix, "shadow-prefix", shadow.DefaultTable.Prefix, "prefix that names a shadow table")
	fs.StringVar(&f.suffix, "shadow-suffix", shadow.DefaultTable.Suffix, "suffix that names a shadow table")
	fs.DurationVar(&f.timeout, "db-timeout", 10*time.Second, "time limit for the database checks")
	fs.StringVar(&f.shadowMySQL, "shadow-mysql", "", "database mode: MySQL/MariaDB DSN of the shadow pool (its user and shadow database); reports privileges that user holds outside the shadow database")
	fs.StringVar(&f.shadowPostgres, "shadow-postgres", "", "database mode: PostgreSQL DSN of the shadow pool; reports privileges its role holds on other databases and on tables outside its current schema")
	return f
}

// checkSQL connects to the configured databases and reports, per table,
// whether its shadow twin exists and matches: the same columns in the same
// order (INSERT without a column list depends on it) with the same types
// and nullability, and the same indexes (columns, uniqueness, method and
// predicate; names may differ). It returns exitOK when every twin matches,
// exitViolation when one is missing or differs (or a production table is
// missing), exitUsage for bad flags and exitSetup when a database cannot
// be reached.
func checkSQL(f *sqlCheckFlags, stdout, stderr io.Writer) int {
	type target struct{ driver, dsn string }
	var targets []target
	for _, t := range []target{{"mysql", f.mysql}, {"pgx", f.postgres}, {"sqlite", f.sqlite}} {
		if t.dsn != "" {
			targets = append(targets, t)
		}
	}
	tables := splitList(f.tables)
	grantCode := exitOK
	if f.shadowMySQL != "" || f.shadowPostgres != "" {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		grantCode = checkShadowGrants(ctx, f.shadowMySQL, f.shadowPostgres, stdout, stderr)
		cancel()
	}
	if len(targets) == 0 {
		if len(tables) > 0 {
			fmt.Fprintln(stderr, "shadowlane check: --tables needs --mysql, --postgres or --sqlite")
			return exitUsage
		}
		return grantCode
	}
	if len(tables) == 0 {
		fmt.Fprintln(stderr, "shadowlane check: --tables is required with --mysql, --postgres or --sqlite")
		return exitUsage
	}
	naming := shadow.Naming{Prefix: f.prefix, Suffix: f.suffix}
	if err := naming.Validate(); err != nil {
		fmt.Fprintln(stderr, "shadowlane check:", err)
		return exitUsage
	}
	for _, t := range tables {
		if naming.IsShadow(t) {
			fmt.Fprintf(stderr, "shadowlane check: %q is already a shadow table name; list production tables\n", t)
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	code := grantCode
	for _, t := range targets {
		c := checkDatabase(ctx, t.driver, t.dsn, tables, naming, stdout, stderr)
		if c == exitSetup || (c == exitViolation && code == exitOK) {
			code = c
		}
	}
	return code
}

// splitList is [cfgfile.SplitList].
func splitList(s string) []string { return cfgfile.SplitList(s) }

// tableInfo is the shape of one table as the checks compare it.
type tableInfo struct {
	exists  bool
	columns []column
	indexes []string // sorted signatures, see each inspector
}

type column struct {
	name, typ string
	nullable  bool
}

type inspector func(ctx context.Context, db *sql.DB, table string) (tableInfo, error)

var inspectors = map[string]struct {
	label   string
	inspect inspector
	dbName  string // query returning the database's name
}{
	"mysql":  {"mysql", inspectMySQL, "SELECT DATABASE()"},
	"pgx":    {"postgres", inspectPostgres, "SELECT current_database() || ' (schema ' || coalesce(current_schema(), '?') || ')'"},
	"sqlite": {"sqlite", inspectSQLite, ""},
}

// openDB opens dsn with driver and pings it; on an error it closes what it
// opened and returns a nil db.
func openDB(ctx context.Context, driver, dsn string) (*sql.DB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func checkDatabase(ctx context.Context, driver, dsn string, tables []string, naming shadow.Naming, stdout, stderr io.Writer) int {
	in := inspectors[driver]
	db, err := openDB(ctx, driver, dsn)
	if err != nil {
		fmt.Fprintf(stderr, "shadowlane check: %s: cannot connect: %v\n", in.label, err)
		return exitSetup
	}
	defer db.Close()
	name := dsn
	if in.dbName != "" {
		if err := db.QueryRowContext(ctx, in.dbName).Scan(&name); err != nil {
			fmt.Fprintf(stderr, "shadowlane check: %s: %v\n", in.label, err)
			return exitSetup
		}
	}
	fmt.Fprintf(stdout, "%s %s: shadow tables (%s)\n", in.label, name, describeNaming(naming))
	code := exitOK
	for _, t := range tables {
		twin := naming.Shadow(t)
		prod, err := in.inspect(ctx, db, t)
		if err == nil && prod.exists {
			var sh tableInfo
			sh, err = in.inspect(ctx, db, twin)
			if err == nil {
				status, diffs := compareTables(prod, sh)
				if driver == "pgx" && sh.exists {
					seqs, err := pgDefaultSequences(ctx, db, twin)
					if err != nil {
						fmt.Fprintf(stderr, "shadowlane check: %s: table %s: %v\n", in.label, twin, err)
						return exitSetup
					}
					for _, cs := range seqs {
						if !naming.IsShadow(cs[1]) {
							diffs = append(diffs, fmt.Sprintf("column %s defaults to nextval of production sequence %s: load-test inserts would advance it (ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval('%s'))", cs[0], cs[1], twin, cs[0], naming.Shadow(cs[1])))
							if status == "ok" {
								status = "different"
							}
						}
					}
				}
				fmt.Fprintf(stdout, "  %s -> %s: %s\n", t, twin, status)
				for _, d := range diffs {
					fmt.Fprintf(stdout, "      - %s\n", d)
				}
				if status != "ok" {
					code = exitViolation
				}
				continue
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "shadowlane check: %s: table %s: %v\n", in.label, t, err)
			return exitSetup
		}
		fmt.Fprintf(stdout, "  %s -> %s: production table not found\n", t, twin)
		code = exitViolation
	}
	if code == exitOK || code == exitViolation {
		code = worst(code, checkSchemaFindings(ctx, driver, db, tables, naming, stdout))
	}
	return code
}

func describeNaming(n shadow.Naming) string {
	switch {
	case n.Prefix != "" && n.Suffix != "":
		return fmt.Sprintf("prefix %q, suffix %q", n.Prefix, n.Suffix)
	case n.Prefix != "":
		return fmt.Sprintf("prefix %q", n.Prefix)
	}
	return fmt.Sprintf("suffix %q", n.Suffix)
}

// compareTables returns "ok", "missing" or "different" and, for the last,
// one line per difference.
func compareTables(prod, sh tableInfo) (string, []string) {
	if !sh.exists {
		return "missing", nil
	}
	var diffs []string
	shCols := map[string]column{}
	for _, c := range sh.columns {
		shCols[c.name] = c
	}
	prodCols := map[string]bool{}
	for _, c := range prod.columns {
		prodCols[c.name] = true
		s, ok := shCols[c.name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("column %s: missing in shadow", c.name))
		case s.typ != c.typ:
			diffs = append(diffs, fmt.Sprintf("column %s: type %s in production, %s in shadow", c.name, c.typ, s.typ))
		}
		if ok && s.nullable != c.nullable {
			diffs = append(diffs, fmt.Sprintf("column %s: %s in production, %s in shadow", c.name, nullWord(c.nullable), nullWord(s.nullable)))
		}
	}
	for _, c := range sh.columns {
		if !prodCols[c.name] {
			diffs = append(diffs, fmt.Sprintf("column %s: only in shadow", c.name))
		}
	}
	if len(diffs) == 0 && !slices.EqualFunc(prod.columns, sh.columns, func(a, b column) bool { return a.name == b.name }) {
		diffs = append(diffs, fmt.Sprintf("column order: (%s) in production, (%s) in shadow", colNames(prod.columns), colNames(sh.columns)))
	}
	diffs = append(diffs, multisetDiff("index", prod.indexes, sh.indexes)...)
	if len(diffs) > 0 {
		return "different", diffs
	}
	return "ok", nil
}

func nullWord(nullable bool) string {
	if nullable {
		return "NULL"
	}
	return "NOT NULL"
}

func colNames(cs []column) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// multisetCount maps each string of prod or sh to how many more times
// prod holds it than sh (negative: fewer).
func multisetCount(prod, sh []string) map[string]int {
	count := map[string]int{}
	for _, s := range prod {
		count[s]++
	}
	for _, s := range sh {
		count[s]--
	}
	return count
}

func multisetDiff(what string, prod, sh []string) []string {
	count := multisetCount(prod, sh)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(count)) {
		switch n := count[k]; {
		case n > 0:
			out = append(out, fmt.Sprintf("%s %s: missing in shadow", what, k))
		case n < 0:
			out = append(out, fmt.Sprintf("%s %s: only in shadow", what, k))
		}
	}
	return out
}

// columnsRead closes the rows the columns were read from and sets
// exists: false (with the error, if any) ends the inspection.
func (ti *tableInfo) columnsRead(rows *sql.Rows) (bool, error) {
	if err := closeRows(rows); err != nil {
		return false, err
	}
	ti.exists = len(ti.columns) > 0
	return ti.exists, nil
}

// inspectMySQL reads a table of the connection's database from
// information_schema. Index signatures: "primary|unique|non-unique [method]
// (col, col(prefix), ...)".
func inspectMySQL(ctx context.Context, db *sql.DB, table string) (tableInfo, error) {
	var ti tableInfo
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, table)
	if err != nil {
		return ti, err
	}
	for rows.Next() {
		var c column
		var null string
		if err := rows.Scan(&c.name, &c.typ, &null); err != nil {
			rows.Close()
			return ti, err
		}
		c.nullable = null == "YES"
		ti.columns = append(ti.columns, c)
	}
	if ok, err := ti.columnsRead(rows); !ok {
		return ti, err
	}
	rows, err = db.QueryContext(ctx, `SELECT INDEX_NAME, NON_UNIQUE, INDEX_TYPE, COLUMN_NAME, COALESCE(SUB_PART, 0)
		FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
		ORDER BY INDEX_NAME, SEQ_IN_INDEX`, table)
	if err != nil {
		return ti, err
	}
	type idx struct {
		kind, method string
		cols         []string
	}
	byName := map[string]*idx{}
	var order []string
	for rows.Next() {
		var name, method string
		var col sql.NullString
		var nonUnique, sub int
		if err := rows.Scan(&name, &nonUnique, &method, &col, &sub); err != nil {
			rows.Close()
			return ti, err
		}
		x := byName[name]
		if x == nil {
			x = &idx{kind: "non-unique", method: strings.ToLower(method)}
			switch {
			case name == "PRIMARY":
				x.kind = "primary"
			case nonUnique == 0:
				x.kind = "unique"
			}
			byName[name] = x
			order = append(order, name)
		}
		c := col.String
		if !col.Valid {
			c = "<expression>"
		}
		if sub > 0 {
			c = fmt.Sprintf("%s(%d)", c, sub)
		}
		x.cols = append(x.cols, c)
	}
	if err := closeRows(rows); err != nil {
		return ti, err
	}
	for _, n := range order {
		x := byName[n]
		ti.indexes = append(ti.indexes, fmt.Sprintf("%s %s (%s)", x.kind, x.method, strings.Join(x.cols, ", ")))
	}
	sort.Strings(ti.indexes)
	return ti, nil
}

// inspectPostgres reads a table resolved on the connection's search_path
// from pg_catalog. Index signatures: "primary|unique|non-unique method (keys)
// [where predicate]", keys as pg_get_indexdef writes them.
func inspectPostgres(ctx context.Context, db *sql.DB, table string) (tableInfo, error) {
	var ti tableInfo
	var oid sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT to_regclass(quote_ident($1))::oid`, table).Scan(&oid); err != nil {
		return ti, err
	}
	if !oid.Valid {
		return ti, nil
	}
	ti.exists = true
	rows, err := db.QueryContext(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
		FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid.Int64)
	if err != nil {
		return ti, err
	}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.nullable); err != nil {
			rows.Close()
			return ti, err
		}
		ti.columns = append(ti.columns, c)
	}
	if err := closeRows(rows); err != nil {
		return ti, err
	}
	rows, err = db.QueryContext(ctx, `SELECT ix.indisprimary, ix.indisunique, am.amname,
			(SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), ', ' ORDER BY k)
			   FROM generate_series(1, ix.indnkeyatts) AS k),
			COALESCE(pg_get_expr(ix.indpred, ix.indrelid, true), '')
		FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid JOIN pg_am am ON am.oid = ic.relam
		WHERE ix.indrelid = $1`, oid.Int64)
	if err != nil {
		return ti, err
	}
	for rows.Next() {
		var primary, unique bool
		var method, keys, pred string
		if err := rows.Scan(&primary, &unique, &method, &keys, &pred); err != nil {
			rows.Close()
			return ti, err
		}
		kind := "non-unique"
		switch {
		case primary:
			kind = "primary"
		case unique:
			kind = "unique"
		}
		sig := fmt.Sprintf("%s %s (%s)", kind, method, keys)
		if pred != "" {
			sig += " where " + pred
		}
		ti.indexes = append(ti.indexes, sig)
	}
	if err := closeRows(rows); err != nil {
		return ti, err
	}
	sort.Strings(ti.indexes)
	return ti, nil
}

// pgDefaultSequences lists (column, sequence) pairs of the column defaults
// of table that depend on a sequence (DEFAULT nextval('...')), as
// CREATE TABLE ... (LIKE ... INCLUDING ALL) copies them from production.
func pgDefaultSequences(ctx context.Context, db *sql.DB, table string) ([][2]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT a.attname, s.relname
		FROM pg_attrdef d
		JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid AND dep.refclassid = 'pg_class'::regclass
		JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
		WHERE d.adrelid = to_regclass(quote_ident($1)) ORDER BY a.attnum`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// inspectSQLite reads a table of the main database with PRAGMA
// table_info/index_list/index_info. Index signatures: "primary|unique|non-unique
// (col, ...)" plus "partial" for indexes with a WHERE clause; a rowid
// primary key (INTEGER PRIMARY KEY) has no index and shows as "primary
// rowid (col)".
func inspectSQLite(ctx context.Context, db *sql.DB, table string) (tableInfo, error) {
	var ti tableInfo
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, table)
	if err != nil {
		return ti, err
	}
	var pks []string
	pkOrder := map[string]int{}
	for rows.Next() {
		var c column
		var notNull, pk int
		if err := rows.Scan(&c.name, &c.typ, &notNull, &pk); err != nil {
			rows.Close()
			return ti, err
		}
		c.typ = strings.ToUpper(c.typ)
		c.nullable = notNull == 0 && pk == 0
		if pk > 0 {
			pks = append(pks, c.name)
			pkOrder[c.name] = pk
		}
		ti.columns = append(ti.columns, c)
	}
	if ok, err := ti.columnsRead(rows); !ok {
		return ti, err
	}
	sort.Slice(pks, func(i, j int) bool { return pkOrder[pks[i]] < pkOrder[pks[j]] })
	rows, err = db.QueryContext(ctx, `SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table)
	if err != nil {
		return ti, err
	}
	type idx struct {
		name, origin string
		unique       bool
		partial      bool
	}
	var idxs []idx
	for rows.Next() {
		var x idx
		var unique, partial int
		if err := rows.Scan(&x.name, &unique, &x.origin, &partial); err != nil {
			rows.Close()
			return ti, err
		}
		x.unique, x.partial = unique == 1, partial == 1
		idxs = append(idxs, x)
	}
	if err := closeRows(rows); err != nil {
		return ti, err
	}
	pkIndexed := false
	for _, x := range idxs {
		cols, err := sqliteIndexColumns(ctx, db, x.name)
		if err != nil {
			return ti, err
		}
		kind := "non-unique"
		switch {
		case x.origin == "pk":
			kind, pkIndexed = "primary", true
		case x.unique:
			kind = "unique"
		}
		sig := fmt.Sprintf("%s (%s)", kind, strings.Join(cols, ", "))
		if x.partial {
			sig += " partial"
		}
		ti.indexes = append(ti.indexes, sig)
	}
	if len(pks) > 0 && !pkIndexed {
		ti.indexes = append(ti.indexes, fmt.Sprintf("primary rowid (%s)", strings.Join(pks, ", ")))
	}
	sort.Strings(ti.indexes)
	return ti, nil
}

func sqliteIndexColumns(ctx context.Context, db *sql.DB, index string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT cid, name FROM pragma_index_info(?) ORDER BY seqno`, index)
	if err != nil {
		return nil, err
	}
	var cols []string
	for rows.Next() {
		var cid int
		var name sql.NullString
		if err := rows.Scan(&cid, &name); err != nil {
			rows.Close()
			return nil, err
		}
		if !name.Valid {
			cols = append(cols, "<expression>")
			continue
		}
		cols = append(cols, name.String)
	}
	return cols, closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
