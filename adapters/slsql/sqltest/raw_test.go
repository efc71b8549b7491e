package sqltest_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	msqlite "modernc.org/sqlite"

	slsql "github.com/shadowlane/shadowlane/adapters/slsql"
	pgdialect "github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

type backuper interface {
	NewBackup(dstURI string) (*msqlite.Backup, error)
}

// TestRawPostgresCopyFrom: slsql.Raw hands production work pgx's own
// connection (CopyFrom writes production rows), and refuses marked work,
// by context or by a marked transaction open on the connection, before the
// callback runs. Judged with a plain pgx client.
func TestRawPostgresCopyFrom(t *testing.T) {
	s := postgres(t)
	plain := open(t, "pgx", s.dsn)
	defer plain.Close()
	table := "raw_orders_" + suffix()
	for _, tb := range []string{table, table + "_shadow"} {
		if _, err := plain.Exec("CREATE TABLE " + tb + " (id INT PRIMARY KEY, total INT)"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { plain.Exec("DROP TABLE " + tb) })
	}
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := sqlshadow.New(pgdialect.New())
	if err != nil {
		t.Fatal(err)
	}
	db := slsql.OpenDB(stdlib.GetConnector(*cfg), rw)
	defer db.Close()
	conn, err := db.Conn(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// The gap: database/sql's own Raw hands over the wrapper.
	conn.Raw(func(dc any) error {
		if _, ok := dc.(*stdlib.Conn); ok {
			t.Error("(*sql.Conn).Raw unexpectedly gave the driver's connection")
		}
		return nil
	})
	copyRows := func(dc any, first int) error {
		pc := dc.(*stdlib.Conn).Conn()
		n, err := pc.CopyFrom(bg, pgx.Identifier{table}, []string{"id", "total"},
			pgx.CopyFromRows([][]any{{first, 1}, {first + 1, 2}, {first + 2, 3}}))
		if err == nil && n != 3 {
			t.Errorf("copied %d rows", n)
		}
		return err
	}
	if err := slsql.Raw(bg, conn, func(dc any) error { return copyRows(dc, 1) }); err != nil {
		t.Fatalf("production CopyFrom: %v", err)
	}
	if got := count(t, plain, table); got != 3 {
		t.Fatalf("production rows after CopyFrom: %d", got)
	}

	ran := false
	err = slsql.Raw(marked, conn, func(dc any) error { ran = true; return copyRows(dc, 10) })
	wantBlocked(t, err)
	if _, err := conn.ExecContext(marked, "INSERT INTO "+table+" (id, total) VALUES (100, 1)"); err != nil {
		t.Fatalf("marked insert on the same conn: %v", err)
	}
	tx, err := conn.BeginTx(marked, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = slsql.Raw(bg, conn, func(dc any) error { ran = true; return copyRows(dc, 20) })
	wantBlocked(t, err)
	tx.Rollback()
	if ran {
		t.Fatal("the callback ran for marked work")
	}
	if got, sh := count(t, plain, table), count(t, plain, table+"_shadow"); got != 3 || sh != 1 {
		t.Fatalf("rows: production %d (want 3), shadow %d (want 1)", got, sh)
	}
	// After the marked transaction ends, production may use it again.
	if err := slsql.Raw(bg, conn, func(dc any) error { return copyRows(dc, 30) }); err != nil {
		t.Fatalf("production CopyFrom after rollback: %v", err)
	}
	if got := count(t, plain, table); got != 6 {
		t.Fatalf("production rows: %d", got)
	}
}

func wantBlocked(t *testing.T, err error) {
	t.Helper()
	var se *shadow.Error
	if !errors.Is(err, shadow.ErrBlocked) || !errors.As(err, &se) || se.Target != "raw" || se.Mark.Run == "" {
		t.Fatalf("err = %v, want *shadow.Error{Target: raw} wrapping ErrBlocked", err)
	}
}

// TestRawSQLiteBackup: the SQLite driver's backup API through slsql.Raw,
// with the limiter's wrapper peeled too; marked work is refused.
func TestRawSQLiteBackup(t *testing.T) {
	raw, _ := sqliteDBs(t)
	if _, err := raw.Exec("INSERT INTO orders VALUES (1, 42)"); err != nil {
		t.Fatal(err)
	}
	rw, err := sqlshadow.New(sqlite.New())
	if err != nil {
		t.Fatal(err)
	}
	var path string
	raw.QueryRow("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path)
	base, err := slsql.DSNConnector(raw.Driver(), path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "backup.db")
	backup := func(dc any) error {
		b, err := dc.(backuper).NewBackup(dst)
		if err != nil {
			return err
		}
		for more := true; more; {
			if more, err = b.Step(-1); err != nil {
				return err
			}
		}
		return b.Finish()
	}
	// Shadowing alone, and shadowing with limiting (one wrapper).
	for _, opts := range [][]slsql.Option{nil, {slsql.WithLimiter(limiter.New())}} {
		db := slsql.OpenDB(base, rw, opts...)
		defer db.Close()
		conn, err := db.Conn(bg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wantBlocked(t, slsql.Raw(marked, conn, backup))
		if err := slsql.Raw(bg, conn, backup); err != nil {
			t.Fatalf("backup: %v", err)
		}
	}
	copyDB, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	var total int
	if err := copyDB.QueryRow("SELECT total FROM orders WHERE id = 1").Scan(&total); err != nil || total != 42 {
		t.Fatalf("backup holds %d, %v", total, err)
	}
}
