package mysql_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func openMariaDB(t *testing.T) *sql.DB {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_MYSQL_ADDR", "127.0.0.1:3306")
	testenv.Need(t, "MariaDB/MySQL", addr)
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?parseTime=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		testenv.Missing(t, "MariaDB/MySQL", addr, err)
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

// TestExecMariaDB runs rewritten statements on a real server and proves
// from the tables themselves that every row lands in the shadow tables and
// the production tables stay empty.
func TestExecMariaDB(t *testing.T) {
	db := openMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	orders, items := randName(t)+"_orders", randName(t)+"_items"
	all := []string{orders, orders + "_shadow", items, items + "_shadow"}
	for _, tb := range all {
		ddl := "CREATE TABLE `" + tb + "` (id INT PRIMARY KEY, total INT NOT NULL DEFAULT 0, note VARCHAR(64) NOT NULL DEFAULT '')"
		if strings.Contains(tb, "_items") {
			ddl = "CREATE TABLE `" + tb + "` (id INT PRIMARY KEY, oid INT NOT NULL, price INT NOT NULL)"
		}
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, tb := range all {
			db.Exec("DROP TABLE IF EXISTS `" + tb + "`")
		}
	})
	d := mysql.New()
	var renamed []string
	rename := func(tb sqlshadow.Table, _ bool) (string, error) {
		renamed = append(renamed, tb.Name)
		return tb.Name + "_shadow", nil
	}
	run := func(q string, args ...any) *sql.Rows {
		t.Helper()
		res, err := d.Rewrite(q, rename)
		if err != nil {
			t.Fatalf("Rewrite(%s): %v", q, err)
		}
		if res.SQL == q {
			t.Fatalf("statement not rewritten: %s", q)
		}
		rows, err := db.QueryContext(ctx, res.SQL, args...)
		if err != nil {
			t.Fatalf("exec %s\n(from %s): %v", res.SQL, q, err)
		}
		return rows
	}
	exec := func(q string, args ...any) {
		t.Helper()
		rows := run(q, args...)
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	o, it := orders, items
	exec("INSERT INTO "+o+" (id, total, note) VALUES (?, ?, ?), (?, ?, ?)", 1, 10, `back\slash 'q'`, 2, 20, "b")
	exec("INSERT INTO test."+it+" (id, oid, price) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)", 1, 1, 5, 2, 1, 6, 3, 2, 7)
	exec("INSERT INTO "+o+" (id, total) VALUES (?, ?) ON DUPLICATE KEY UPDATE total = "+o+".total + VALUES(total)", 1, 100)
	exec("REPLACE INTO "+o+" (id, total, note) VALUES (?, ?, ?)", 3, 30, "c")
	exec("INSERT INTO "+o+" (id, total) SELECT id + 10, price FROM "+it+" WHERE "+it+".oid = ?", 2)
	exec("UPDATE "+o+" x JOIN "+it+" ON "+it+".oid = x.id SET x.note = 'joined' WHERE "+it+".price = ?", 5)
	exec("UPDATE "+o+", "+it+" SET "+o+".total = "+o+".total + 1, "+it+".price = "+it+".price + 1 WHERE "+it+".oid = "+o+".id AND "+o+".id = ?", 2)
	exec("DELETE i FROM "+it+" i JOIN "+o+" ON "+o+".id = i.oid WHERE "+o+".id = ?", 2)
	exec("DELETE FROM "+o+" WHERE id = ?", 3)
	exec(`UPDATE `+o+` SET note = 'back\\slash ''q'' "d"' WHERE id = ?`, 2)
	exec("DELETE FROM "+o+" WHERE id IN (WITH k AS (SELECT id FROM "+it+" WHERE price > ?) SELECT id + 12 FROM k)", 0)

	// Reads through the rewriter see exactly the shadow rows.
	rows := run("SELECT " + o + ".id, " + o + ".total, " + o + ".note, count(" + it + ".id) FROM " + o + " LEFT JOIN " + it + " ON " + it + ".oid = " + o + ".id WHERE " + o + ".id IN (SELECT oid FROM " + it + ") GROUP BY " + o + ".id, " + o + ".total, " + o + ".note ORDER BY " + o + ".id FOR UPDATE")
	var got []string
	for rows.Next() {
		var id, total, n int
		var note string
		if err := rows.Scan(&id, &total, &note, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{itoa(id), itoa(total), note, itoa(n)}, "|"))
	}
	rows.Close()
	if want := "1|110|joined|2"; len(got) != 1 || got[0] != want {
		t.Fatalf("shadow rows = %v, want [%s]", got, want)
	}
	var note string
	if err := db.QueryRowContext(ctx, "SELECT note FROM `"+o+"_shadow` WHERE id = 2").Scan(&note); err != nil || note != `back\slash 'q' "d"` {
		t.Fatalf("row 2 note = %q, %v", note, err)
	}
	var total int
	if err := db.QueryRowContext(ctx, "SELECT total FROM `"+o+"_shadow` WHERE id = 2").Scan(&total); err != nil || total != 21 {
		t.Fatalf("row 2 total = %d, %v (multi-table UPDATE)", total, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT note FROM `"+o+"_shadow` WHERE id = 1").Scan(&note); err != nil {
		t.Fatal(err)
	}
	// Production tables: untouched.
	for _, tb := range []string{o, it} {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM `"+tb+"`").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("production table %s has %d rows; load-test writes leaked", tb, n)
		}
	}
	// Shadow tables: the expected rows, and backslashes/quotes intact.
	counts := map[string]int{o + "_shadow": 2, it + "_shadow": 2}
	for tb, want := range counts {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM `"+tb+"`").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s has %d rows, want %d", tb, n, want)
		}
	}
	for _, n := range renamed {
		if strings.HasSuffix(n, "_shadow") {
			t.Errorf("rename was asked about a shadow table %s", n)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}
