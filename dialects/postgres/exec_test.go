package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_POSTGRES_ADDR", "127.0.0.1:5432")
	testenv.Need(t, "PostgreSQL", addr)
	db, err := sql.Open("pgx", "postgres://postgres@"+addr+"/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		testenv.Missing(t, "PostgreSQL", addr, err)
	}
	return db
}

func randName(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

func qi(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestExecPostgres runs rewritten statements on a real server and proves
// from the tables themselves that every row lands in the shadow tables and
// the production tables stay empty.
func TestExecPostgres(t *testing.T) {
	db := openPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := randName(t)
	o, it, ln := p+"_orders", p+"_items", strings.ToUpper(p)+" Lines"
	var all []string
	for _, tb := range []string{o, it, ln} {
		for _, name := range []string{tb, tb + "_shadow"} {
			ddl := "CREATE TABLE public." + qi(name) + " (id int PRIMARY KEY, oid int NOT NULL DEFAULT 0, total int NOT NULL DEFAULT 0, note text NOT NULL DEFAULT '')"
			if _, err := db.ExecContext(ctx, ddl); err != nil {
				t.Fatal(err)
			}
			all = append(all, name)
		}
	}
	t.Cleanup(func() {
		for _, tb := range all {
			db.Exec("DROP TABLE IF EXISTS public." + qi(tb))
		}
	})
	d := postgres.New()
	rewrite := func(q string) string {
		t.Helper()
		res, err := d.Rewrite(q, func(tb sqlshadow.Table, _ bool) (string, error) {
			if strings.HasSuffix(tb.Name, "_shadow") {
				return "", fmt.Errorf("asked to rename shadow table %s", tb)
			}
			return tb.Name + "_shadow", nil
		})
		if err != nil {
			t.Fatalf("Rewrite(%s): %v", q, err)
		}
		if res.SQL == q {
			t.Fatalf("statement not rewritten: %s", q)
		}
		return res.SQL
	}
	exec := func(q string, args ...any) {
		t.Helper()
		s := rewrite(q)
		if _, err := db.ExecContext(ctx, s, args...); err != nil {
			t.Fatalf("exec %s\n(from %s): %v", s, q, err)
		}
	}
	exec("INSERT INTO "+o+" (id, total, note) VALUES ($1, $2, $3), ($4, $5, $6)", 1, 10, "a", 2, 20, "b")
	exec("INSERT INTO public."+it+" (id, oid, total) VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)", 1, 1, 5, 2, 1, 6, 3, 2, 7)
	exec("INSERT INTO "+o+" AS x (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = x.total + EXCLUDED.total RETURNING x.id", 1, 100)
	exec("INSERT INTO "+o+" (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = "+o+".total + 1", 2, 0)
	exec("INSERT INTO "+o+" (id, total) SELECT id + 10, total FROM "+it+" WHERE "+it+".oid = $1", 2)
	exec("UPDATE "+o+" SET note = 'joined' FROM "+it+" WHERE "+it+".oid = "+o+".id AND "+it+".total = $1 RETURNING "+o+".id", 5)
	exec("DELETE FROM "+it+" USING "+o+" WHERE "+o+".id = "+it+".oid AND "+o+".id = $1", 2)
	exec("WITH gone AS (DELETE FROM "+o+" WHERE id > $1 RETURNING id) INSERT INTO "+qi(ln)+" (id) SELECT id FROM gone", 10)
	exec("WITH RECURSIVE n(i) AS (SELECT 100 UNION ALL SELECT i + 1 FROM n WHERE i < 102) INSERT INTO public."+qi(ln)+" (id, note) SELECT i, $1 FROM n", `it's \ "q"`)
	exec("MERGE INTO "+o+" m USING "+it+" s ON m.id = s.oid WHEN MATCHED AND s.id = 2 THEN UPDATE SET note = m.note || '+'", nil...)

	// Reads through the rewriter see exactly the shadow rows.
	rows, err := db.QueryContext(ctx, rewrite("SELECT "+o+".id, "+o+".total, "+o+".note, count("+it+".id) FROM public."+o+" LEFT JOIN "+it+" ON "+it+".oid = "+o+".id GROUP BY "+o+".id ORDER BY "+o+".id"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, total, n int
		var note string
		if err := rows.Scan(&id, &total, &note, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d|%d|%s|%d", id, total, note, n))
	}
	rows.Close()
	if want := "[1|110|joined+|2 2|21|b|0]"; fmt.Sprint(got) != want {
		t.Fatalf("shadow rows via rewritten SELECT = %v, want %s", got, want)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	lrows, err := tx.QueryContext(ctx, rewrite("SELECT l.id FROM "+qi(ln)+" l WHERE l.note = $1 FOR UPDATE OF l"), `it's \ "q"`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for lrows.Next() {
		n++
	}
	lrows.Close()
	tx.Rollback()
	if n != 3 {
		t.Fatalf("quoted shadow table rows with note = %d, want 3", n)
	}

	// Production tables: untouched. Shadow tables: the expected rows.
	want := map[string]int{o: 0, it: 0, ln: 0, o + "_shadow": 2, it + "_shadow": 2, ln + "_shadow": 4}
	for tb, w := range want {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM public."+qi(tb)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != w {
			t.Errorf("%s has %d rows, want %d", tb, n, w)
		}
	}
}
