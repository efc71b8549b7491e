// Command gen writes funcs_gen.go from a PostgreSQL server's catalog.
// The DSN comes from -dsn or SHADOWLANE_PG_DSN (default: the local test
// server).
package main

import (
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane/dialects/postgres/internal/funcgen"
)

func main() { funcgen.Generator.Main() }
