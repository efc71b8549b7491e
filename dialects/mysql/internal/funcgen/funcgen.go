// Package funcgen generates the MySQL/MariaDB allow-list of built-in
// functions that load-test statements may call. MariaDB keeps no catalog
// table of its native functions, so the candidates are the function topics
// of the server's help tables (mysql.help_topic), and each candidate is
// confirmed native by the server itself: calling it must not fail with
// ER_SP_DOES_NOT_EXIST (1305), the error of a name that is no native
// function. A denylist removes built-ins with effects beyond the statement.
package funcgen

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/shadowlane/shadowlane/internal/funclist"
)

// Denied are built-ins never allowed for load-test statements: they take
// locks that outlive the statement, wait on replication, sleep, read
// server files, or use sequences (the sequence functions are allowed only
// with a sequence name the rewrite renames; the dialect handles them).
var Denied = []string{
	"get_lock", "release_lock", "release_all_locks", "sleep", "benchmark", "load_file",
	"master_pos_wait", "master_gtid_wait", "source_pos_wait", "wsrep_sync_wait_upto_gtid",
	"nextval", "setval", "lastval",
}

var ident = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Generator generates the list from a MariaDB server (by its help
// tables, each name confirmed on the server).
var Generator = funclist.Generator{
	Package: "mysql", Driver: "mysql", DSNEnv: "SHADOWLANE_MYSQL_DSN", DefaultDSN: "root@tcp(127.0.0.1:3306)/test",
	ServerDoc: "the server the list was generated from",
	Doc:       []string{"safeFuncs are the native functions load-test statements may call", "(see internal/funcgen)."},
	Read:      read,
}

// read reads the help tables of db and confirms each candidate on the
// server.
func read(ctx context.Context, db *sql.DB) (funclist.List, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return funclist.List{}, err
	}
	major := version
	if i := strings.IndexByte(version, '-'); i >= 0 {
		major = version[:i]
	}
	if parts := strings.SplitN(major, ".", 3); len(parts) >= 2 {
		major = parts[0] + "." + parts[1]
	}
	cands := map[string]bool{}
	err := funclist.Each(ctx, db, "SELECT name FROM mysql.help_topic", func(rows *sql.Rows) error {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		n = strings.ToLower(strings.ReplaceAll(n, `\_`, "_"))
		n = strings.TrimSuffix(n, " function")
		if ident.MatchString(n) && !denied(n) {
			cands[n] = true
		}
		return nil
	})
	if err != nil {
		return funclist.List{}, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return funclist.List{}, err
	}
	defer conn.Close()
	var names []string
	for n := range cands {
		if native(ctx, conn, n) {
			names = append(names, n)
		}
	}
	return funclist.List{From: "MariaDB " + major + "'s help tables, confirmed on the server", Server: major, Names: names}, nil
}

// native calls name with zero, then one argument, inside a read-only
// transaction that is rolled back: a name that is no native function fails
// with 1305 (or does not parse as a call).
func native(ctx context.Context, conn *sql.Conn, name string) bool {
	for _, args := range []string{"()", "(NULL)", "(NULL, NULL)", "(NULL, NULL, NULL)"} {
		err := try(ctx, conn, "SELECT "+name+args)
		var me *mysql.MySQLError
		if err == nil {
			return true
		}
		if !errors.As(err, &me) {
			return false
		}
		switch me.Number {
		case 1305, 1630: // FUNCTION x does not exist (and its "check the Function Name Parsing" variant)
			return false
		case 1064: // does not parse with this argument count: try another
			continue
		}
		return true // wrong argument count or type: a native function
	}
	return false
}

func try(ctx context.Context, conn *sql.Conn, q string) error {
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return funclist.Each(ctx, tx, q, nil)
}

func denied(name string) bool {
	for _, d := range Denied {
		if name == d {
			return true
		}
	}
	return false
}
