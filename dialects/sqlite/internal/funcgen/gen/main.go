// Command gen writes funcs_gen.go from the SQLite compiled into
// modernc.org/sqlite.
package main

import (
	_ "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane/dialects/sqlite/internal/funcgen"
)

func main() { funcgen.Generator.Main() }
