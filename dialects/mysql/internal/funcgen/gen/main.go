// Command gen writes funcs_gen.go from a MariaDB server's help tables.
// The DSN comes from -dsn or SHADOWLANE_MYSQL_DSN (default: the local test
// server).
package main

import (
	"context"
	"database/sql"
	"flag"
	"log"
	"os"

	_ "github.com/go-sql-driver/mysql"

	"github.com/shadowlane/shadowlane/dialects/mysql/internal/funcgen"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("SHADOWLANE_MYSQL_DSN"), "go-sql-driver DSN")
	out := flag.String("o", "funcs_gen.go", "output file")
	flag.Parse()
	if *dsn == "" {
		*dsn = "root@tcp(127.0.0.1:3306)/test"
	}
	db, err := sql.Open("mysql", *dsn)
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
