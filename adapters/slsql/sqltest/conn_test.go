package sqltest_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

var (
	bg     = context.Background()
	marked = propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
)

func suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sqliteDBs returns the raw database (for setup and read-back) and the
// same database opened through the shadowing connector.
func sqliteDBs(t *testing.T, opts ...sqlshadow.Option) (raw, wrapped *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shop.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	for _, ddl := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, total INT)",
		"CREATE TABLE orders_shadow (id INTEGER PRIMARY KEY, total INT)",
		"CREATE TABLE countries (code TEXT PRIMARY KEY)",
		"INSERT INTO countries VALUES ('FR')",
	} {
		if _, err := raw.Exec(ddl); err != nil {
			t.Fatal(err)
		}
	}
	rw, err := sqlshadow.New(sqlite.New(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := slsql.DSNConnector(raw.Driver(), path)
	if err != nil {
		t.Fatal(err)
	}
	wrapped = slsql.OpenDB(c, rw)
	t.Cleanup(func() { wrapped.Close() })
	return raw, wrapped
}

func count(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCounts(t *testing.T, db *sql.DB, prod, shadowRows int) {
	t.Helper()
	if p, s := count(t, db, "orders"), count(t, db, "orders_shadow"); p != prod || s != shadowRows {
		t.Fatalf("orders=%d orders_shadow=%d, want %d and %d", p, s, prod, shadowRows)
	}
}

func TestTableModeExecQuery(t *testing.T) {
	raw, db := sqliteDBs(t, sqlshadow.WithReadThrough("countries"))
	if _, err := db.ExecContext(bg, "INSERT INTO orders (total) VALUES (?)", 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := db.ExecContext(marked, "INSERT INTO orders (total) VALUES (?)", 2); err != nil {
			t.Fatal(err)
		}
	}
	wantCounts(t, raw, 1, 2)

	var n int
	if err := db.QueryRowContext(marked, "SELECT count(*) FROM orders WHERE total = 2").Scan(&n); err != nil || n != 2 {
		t.Fatalf("marked read saw %d rows (%v), want the 2 shadow rows", n, err)
	}
	if err := db.QueryRowContext(bg, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 1 {
		t.Fatalf("unmarked read saw %d rows (%v)", n, err)
	}
	// read-through: marked traffic reads reference data in production...
	var code string
	if err := db.QueryRowContext(marked, "SELECT code FROM countries").Scan(&code); err != nil || code != "FR" {
		t.Fatalf("read-through read: %q, %v", code, err)
	}
	// ...and may not write it.
	_, err := db.ExecContext(marked, "INSERT INTO countries VALUES ('DE')")
	if !errors.Is(err, shadow.ErrBlocked) {
		t.Fatalf("read-through write: %v", err)
	}
	if count(t, raw, "countries") != 1 {
		t.Fatal("read-through table was written")
	}
}

func TestTableModeRefusals(t *testing.T) {
	raw, db := sqliteDBs(t)
	cases := []struct {
		ctx context.Context
		q   string
		is  error
	}{
		{marked, "DROP TABLE orders", shadow.ErrUnsupported},
		{marked, "DELETE FROM orders; DELETE FROM orders_shadow", shadow.ErrUnsupported},
		{marked, "DELETE FROM orders WHERE nonsense(", shadow.ErrUnsupported},
		{bg, "DELETE FROM orders_shadow", shadow.ErrShadowFromProduction},
		{bg, "SELECT * FROM ORDERS_SHADOW", shadow.ErrShadowFromProduction},
	}
	for _, c := range cases {
		_, err := db.ExecContext(c.ctx, c.q)
		var se *shadow.Error
		if !errors.As(err, &se) || !errors.Is(err, c.is) || se.Store != "sqlite" {
			t.Errorf("%q: err = %v, want %v", c.q, err, c.is)
		}
	}
	if _, err := raw.Exec("SELECT * FROM orders"); err != nil {
		t.Fatal("orders was dropped: ", err)
	}
}

func TestPreparedStatementFollowsEachCall(t *testing.T) {
	raw, db := sqliteDBs(t)
	db.SetMaxOpenConns(1)
	// prepared unmarked, executed marked: must never run the production text
	st, err := db.PrepareContext(bg, "INSERT INTO orders (total) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ExecContext(marked, 5); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, raw, 0, 1)
	if _, err := st.ExecContext(bg, 6); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, raw, 1, 1)
	st.Close()

	// prepared marked, executed unmarked: production text, production table
	st, err = db.PrepareContext(marked, "SELECT count(*) FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.QueryRowContext(bg).Scan(&n); err != nil || n != 1 {
		t.Fatalf("unmarked run of a statement prepared marked: %d, %v", n, err)
	}
	if _, err := st.ExecContext(marked); err != nil {
		t.Fatal(err)
	}
}

func TestTransactionBegunMarkedStaysShadow(t *testing.T) {
	raw, db := sqliteDBs(t)
	tx, err := db.BeginTx(marked, nil)
	if err != nil {
		t.Fatal(err)
	}
	// statements inside carry no mark of their own
	if _, err := tx.ExecContext(bg, "INSERT INTO orders (total) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	st, err := tx.PrepareContext(bg, "INSERT INTO orders (total) VALUES (?)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Exec(2); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, raw, 0, 2)
	// the connection is production again afterwards
	if _, err := db.ExecContext(bg, "INSERT INTO orders (total) VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, raw, 1, 2)
}
