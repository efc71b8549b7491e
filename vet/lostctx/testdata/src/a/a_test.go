package a

import (
	"context"
	"database/sql"
	"testing"
)

// Tests are never reported.
func TestX(t *testing.T) {
	ctx := context.Background()
	var db *sql.DB
	f := func(ctx context.Context) { db.Exec("SELECT 1"); _ = context.Background() }
	f(ctx)
}
