// Command gen writes funcs_gen.go from a PostgreSQL server's catalog.
// The DSN comes from -dsn or SHADOWLANE_PG_DSN (default: the local test
// server).
package main

import (
	"context"
	"database/sql"
	"flag"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane/dialects/postgres/internal/funcgen"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("SHADOWLANE_PG_DSN"), "PostgreSQL DSN")
	out := flag.String("o", "funcs_gen.go", "output file")
	flag.Parse()
	if *dsn == "" {
		*dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", *dsn)
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
