package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/dialects/postgres/internal/funcgen"
	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestFuncsGenerated regenerates the function allow-list from the real
// server's catalog and diffs it with the committed funcs_gen.go.
func TestFuncsGenerated(t *testing.T) {
	db := openPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var major int
	if err := db.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&major); err != nil {
		t.Fatal(err)
	}
	if major != 15 {
		if testenv.Required() {
			t.Fatalf("funcs_gen.go is generated from PostgreSQL 15, the server is %d", major)
		}
		t.Skipf("funcs_gen.go is generated from PostgreSQL 15, the server is %d", major)
	}
	got, err := funcgen.Generator.Generate(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("funcs_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("funcs_gen.go is stale: run go generate in dialects/postgres (generated %d bytes, committed %d)", len(got), len(want))
	}
}
