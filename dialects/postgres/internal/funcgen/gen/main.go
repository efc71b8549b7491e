// Command gen writes funcs_gen.go from a PostgreSQL server's catalog.
// The DSN comes from -dsn or SHADOWLANE_PG_DSN (default: the local test
// server).
package main

import (
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane/dialects/postgres/internal/funcgen"
	"github.com/shadowlane/shadowlane/internal/funclist"
)

func main() {
	funclist.Main(funclist.Generator{Driver: "pgx", DSNEnv: "SHADOWLANE_PG_DSN",
		DefaultDSN: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", Read: funcgen.Read})
}
