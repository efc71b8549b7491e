package sqlshadow

import (
	"strings"
	"sync"
)

var registry sync.Map // lowercase driver or dialector name -> Dialect

// RegisterDialect makes d the dialect of the database/sql driver names and
// gorm dialector names given ("sqlite", "pgx", "postgres", "mysql"...),
// for code that opens databases without naming a dialect: Orchestrion's
// zero-code wiring of sql.Open, sql.OpenDB and gorm.Open (each dialect
// module's orchestrion.yml registers itself at start-up). A later
// registration of a name replaces the earlier one.
func RegisterDialect(d Dialect, names ...string) {
	for _, n := range names {
		registry.Store(strings.ToLower(n), d)
	}
}

// DialectFor returns the dialect registered for name, nil when none is.
func DialectFor(name string) Dialect {
	if d, ok := registry.Load(strings.ToLower(name)); ok {
		return d.(Dialect)
	}
	return nil
}
