// Package funcgen generates the SQLite allow-list of functions that
// load-test statements may call: every function of pragma_function_list
// that SQLite itself flags SQLITE_INNOCUOUS (no side effects, safe even if
// misused) and not SQLITE_DIRECTONLY, as compiled into modernc.org/sqlite.
package funcgen

import (
	"context"
	"database/sql"
	"strings"

	"github.com/shadowlane/shadowlane/internal/funclist"
)

const (
	innocuous  = 0x200000 // SQLITE_INNOCUOUS
	directOnly = 0x080000 // SQLITE_DIRECTONLY
)

// Denied are functions never allowed whatever their flags.
var Denied = []string{"load_extension", "fts3_tokenizer", "sqlite_log", "readfile", "writefile", "edit"}

// Generator generates the list from the SQLite compiled into
// modernc.org/sqlite.
var Generator = funclist.Generator{
	Package: "sqlite", Driver: "sqlite", DefaultDSN: ":memory:",
	ServerDoc: "the SQLite version the list was generated from",
	Doc:       []string{"safeFuncs are the functions load-test statements may call (see", "internal/funcgen)."},
	Read:      read,
}

// read reads the list from db's pragma_function_list.
func read(ctx context.Context, db *sql.DB) (funclist.List, error) {
	var version string
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version); err != nil {
		return funclist.List{}, err
	}
	ok := map[string]bool{}
	err := funclist.Each(ctx, db, "SELECT name, flags FROM pragma_function_list", func(rows *sql.Rows) error {
		var name string
		var flags int64
		if err := rows.Scan(&name, &flags); err != nil {
			return err
		}
		name = strings.ToLower(name)
		good := flags&innocuous != 0 && flags&directOnly == 0
		for _, d := range Denied {
			good = good && name != d
		}
		if v, seen := ok[name]; seen {
			ok[name] = v && good // every overload must be innocuous
		} else {
			ok[name] = good
		}
		return nil
	})
	if err != nil {
		return funclist.List{}, err
	}
	var names []string
	for n, good := range ok {
		if good && n != "" && n[0] >= 'a' && n[0] <= 'z' {
			names = append(names, n)
		}
	}
	return funclist.List{From: "SQLite " + version + "'s pragma_function_list (modernc.org/sqlite)", Server: version, Names: names}, nil
}
