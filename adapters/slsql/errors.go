package slsql

import (
	"database/sql/driver"
	"errors"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// MapError turns the server's "table does not exist" error for a shadow
// table into a *shadow.Error wrapping [shadow.ErrNoShadowTarget] that names
// the table and says how to create it: PostgreSQL SQLSTATE 42P01
// (undefined_table; pgx, lib/pq), MySQL/MariaDB error 1146
// (go-sql-driver/mysql) and SQLite "no such table" (modernc, mattn). The
// drivers are recognised by their error types' methods and fields, so this
// package imports none of them. Every other error, and a missing table
// that is not a shadow table, is returned unchanged. The connector applies
// it to marked statements; other adapters (gorm) may call it themselves.
func MapError(rw *sqlshadow.Rewriter, m propagation.Mark, err error) error {
	if err == nil || rw == nil {
		return err
	}
	var se *shadow.Error
	if errors.As(err, &se) {
		return err
	}
	table, ok := missingTable(err)
	if !ok {
		return err
	}
	bare := table
	if i := strings.LastIndexByte(bare, '.'); i >= 0 {
		bare = bare[i+1:]
	}
	prod, ok := rw.ProductionTable(bare)
	if !ok {
		return err
	}
	store := rw.Dialect().Name()
	how := "CREATE TABLE " + bare + " AS a copy of the structure of " + prod
	switch store {
	case "mysql":
		how = "CREATE TABLE " + bare + " LIKE " + prod
	case "postgres":
		how = "CREATE TABLE " + bare + " (LIKE " + prod + " INCLUDING ALL), then point its nextval() defaults at the shadow sequences (<sequence>" + "_shadow under the default naming), or they advance production's"
	case "sqlite":
		how = "CREATE TABLE " + bare + " with the columns of " + prod + " (see sqlite_schema)"
	}
	return &shadow.Error{Store: store, Target: table, Mark: m, Err: shadow.ErrNoShadowTarget,
		Rule: "shadow table " + bare + " of " + prod + " does not exist on the server: create it (" + how +
			") and check the setup with `shadowlane check`; server said: " + err.Error()}
}

// missingTable finds a "no such table" error in the chain of err and the
// table it names (as the server wrote it, possibly schema-qualified).
func missingTable(err error) (string, bool) {
	for e := err; e != nil; e = errors.Unwrap(e) {
		msg := e.Error()
		if s, ok := e.(interface{ SQLState() string }); ok && s.SQLState() == "42P01" {
			// relation "x_shadow" does not exist
			return quoted(msg, "relation \"", '"')
		}
		if sqlshadow.MySQLErrorNumber(e) == 1146 {
			// Table 'db.x_shadow' doesn't exist
			return quoted(msg, "Table '", '\'')
		}
		if i := strings.Index(msg, "no such table: "); i >= 0 {
			rest := msg[i+len("no such table: "):]
			if j := strings.IndexAny(rest, " \n\t("); j >= 0 {
				rest = rest[:j]
			}
			return rest, rest != ""
		}
	}
	return "", false
}

func quoted(msg, prefix string, end byte) (string, bool) {
	i := strings.Index(msg, prefix)
	if i < 0 {
		return "", false
	}
	rest := msg[i+len(prefix):]
	j := strings.IndexByte(rest, end)
	if j <= 0 {
		return "", false
	}
	return rest[:j], true
}

// mapErr maps a driver error of a marked statement (see [MapError]) and
// counts it in the run's evidence.
func (c *conn) mapErr(m propagation.Mark, err error) error {
	if err == nil || m.Run == "" || c.rw == nil {
		return err
	}
	err = MapError(c.rw, m, err)
	c.countErr(m.Run, err)
	return err
}

// countErr counts an error of a marked statement, transaction begin or
// commit in the run's evidence, in the rewriter's series (its Runtime's):
// reason "sql <class>" (see [sqlshadow.ErrorReason]). driver.ErrSkip and
// driver.ErrBadConn are not counted: database/sql falls back or retries
// on them, so the application does not see them.
func (c *conn) countErr(run string, err error) {
	if err == nil || run == "" || c.rw == nil || errors.Is(err, driver.ErrSkip) || errors.Is(err, driver.ErrBadConn) {
		return
	}
	c.rw.Decisions().RunError(run, sqlshadow.ErrorReason(err))
}
