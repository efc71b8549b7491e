// Command gen writes funcs_gen.go from a MariaDB server's help tables.
// The DSN comes from -dsn or SHADOWLANE_MYSQL_DSN (default: the local test
// server).
package main

import (
	_ "github.com/go-sql-driver/mysql"

	"github.com/shadowlane/shadowlane/dialects/mysql/internal/funcgen"
)

func main() { funcgen.Generator.Main() }
