package main

import (
	"context"
	"database/sql"
	"net/http"
)

func main() {
	ctx := context.Background() // fine: main has no request context
	var db *sql.DB
	db.Exec("SELECT 1") // fine
	_ = ctx
	http.HandleFunc("/x", func(w http.ResponseWriter, r *http.Request) {
		db.Exec("DELETE FROM t") // want `\(\*sql.DB\).Exec has no context`
	})
}
