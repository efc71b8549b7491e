package a

import (
	"context"
	"database/sql"
	"testing"
)

// A test helper outside a _test.go file: *testing.T has Context(), but it
// is no request context.
func helper(t *testing.T, db *sql.DB) {
	db.ExecContext(context.Background(), "SELECT 1")
	db.Exec("SELECT 1")
}
