// Command gen writes funcs_gen.go from the SQLite compiled into
// modernc.org/sqlite.
package main

import (
	"context"
	"database/sql"
	"flag"
	"log"
	"os"

	_ "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane/dialects/sqlite/internal/funcgen"
)

func main() {
	out := flag.String("o", "funcs_gen.go", "output file")
	flag.Parse()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	src, err := funcgen.Generate(context.Background(), db)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
