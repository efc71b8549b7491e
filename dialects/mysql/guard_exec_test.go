package mysql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// TestGuardExecutableComments: unmarked statements that hide a shadow
// table inside an executable comment are refused by the guard; on the real
// server nothing reaches the shadow table, while a statement whose comment
// names no shadow table runs as on a plain connection.
func TestGuardExecutableComments(t *testing.T) {
	db := openMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := randName(t)
	o := p + "_orders"
	for _, q := range []string{"CREATE TABLE " + o + " (id int PRIMARY KEY)", "CREATE TABLE " + o + "_shadow (id int PRIMARY KEY)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS " + o + ", " + o + "_shadow") })
	rw, err := sqlshadow.New(mysql.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO " + o + " (id) VALUES (1) /*!100000 ; INSERT INTO " + o + "_shadow VALUES (9) */",
		"SELECT 1 /*M!100000 , (SELECT count(*) FROM " + o + "_shadow) */",
		"DELETE FROM " + o + " WHERE id IN (SELECT id FROM /*! " + o + "_shadow */ " + o + ")",
		"INSERT INTO /*!50100 " + o + "_shadow */ " + o + " VALUES (7)",
	} {
		out, err := rw.Statement(ctx, q)
		if !errors.Is(err, shadow.ErrShadowFromProduction) {
			t.Errorf("%s: guard let it through: %q, %v", q, out, err)
			db.ExecContext(ctx, out)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+o+"_shadow").Scan(&n); err != nil || n != 0 {
		t.Fatalf("shadow rows %d, %v", n, err)
	}
	// Not a shadow name: unchanged behaviour.
	q := "INSERT INTO " + o + " (id) VALUES (1) /*!100000 , (2) */"
	out, err := rw.Statement(ctx, q)
	if err != nil || out != q {
		t.Fatalf("%s: %q, %v", q, out, err)
	}
	if _, err := db.ExecContext(ctx, out); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+o).Scan(&n); err != nil || n != 2 {
		t.Fatalf("production rows %d, %v; the executable comment should have inserted a second row", n, err)
	}
}
