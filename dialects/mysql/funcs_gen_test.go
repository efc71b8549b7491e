package mysql_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/dialects/mysql/internal/funcgen"
	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestFuncsGenerated regenerates the function allow-list from the real
// server and diffs it with the committed funcs_gen.go.
func TestFuncsGenerated(t *testing.T) {
	db := openMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, "10.11.") || !strings.Contains(version, "MariaDB") {
		if testenv.Required() {
			t.Fatalf("funcs_gen.go is generated from MariaDB 10.11, the server is %s", version)
		}
		t.Skipf("funcs_gen.go is generated from MariaDB 10.11, the server is %s", version)
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
		t.Fatalf("funcs_gen.go is stale: run go generate in dialects/mysql (generated %d bytes, committed %d)", len(got), len(want))
	}
}
