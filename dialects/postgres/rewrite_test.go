package postgres_test

import (
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

func suffix(t sqlshadow.Table, write bool) (string, error) { return t.Name + "_shadow", nil }

func r(name string) sqlshadow.Use { return sqlshadow.Use{Table: sqlshadow.Table{Name: name}} }
func w(name string) sqlshadow.Use {
	return sqlshadow.Use{Table: sqlshadow.Table{Name: name}, Write: true}
}
func rs(schema, name string) sqlshadow.Use {
	return sqlshadow.Use{Table: sqlshadow.Table{Schema: schema, Name: name}}
}
func ws(schema, name string) sqlshadow.Use {
	return sqlshadow.Use{Table: sqlshadow.Table{Schema: schema, Name: name}, Write: true}
}

type use = []sqlshadow.Use

var cases = []struct {
	name   string
	in     string
	want   string
	kind   sqlshadow.Kind
	tables []sqlshadow.Use
}{
	{"select", "SELECT id FROM orders WHERE id = $1",
		"SELECT id FROM orders_shadow WHERE id = $1", sqlshadow.KindRead, use{r("orders")}},
	{"join qualified columns and alias",
		"SELECT o.id, orders.id, items.* FROM orders JOIN items ON items.oid = orders.id LEFT JOIN users o ON o.id = orders.uid",
		"SELECT o.id, orders_shadow.id, items_shadow.* FROM orders_shadow JOIN items_shadow ON items_shadow.oid = orders_shadow.id LEFT JOIN users_shadow o ON o.id = orders_shadow.uid",
		sqlshadow.KindRead, use{r("orders"), r("items"), r("users")}},
	{"subqueries", "SELECT * FROM orders WHERE uid IN (SELECT id FROM users) AND EXISTS (SELECT 1 FROM items i WHERE i.oid = orders.id)",
		"SELECT * FROM orders_shadow WHERE uid IN (SELECT id FROM users_shadow) AND EXISTS (SELECT 1 FROM items_shadow i WHERE i.oid = orders_shadow.id)",
		sqlshadow.KindRead, use{r("orders"), r("users"), r("items")}},
	{"derived table and lateral", "SELECT d.n FROM (SELECT count(*) AS n FROM orders) AS d, LATERAL (SELECT 1 FROM items WHERE items.n = d.n) l",
		"SELECT d.n FROM (SELECT count(*) AS n FROM orders_shadow) AS d, LATERAL (SELECT 1 FROM items_shadow WHERE items_shadow.n = d.n) l",
		sqlshadow.KindRead, use{r("orders"), r("items")}},
	{"union", "SELECT id FROM orders UNION ALL SELECT id FROM archive",
		"SELECT id FROM orders_shadow UNION ALL SELECT id FROM archive_shadow", sqlshadow.KindRead, use{r("orders"), r("archive")}},
	{"schema qualified", "SELECT public.orders.id FROM public.orders WHERE public.orders.id = $1",
		"SELECT public.orders_shadow.id FROM public.orders_shadow WHERE public.orders_shadow.id = $1", sqlshadow.KindRead, use{rs("public", "orders")}},
	{"catalog qualified with comment", "SELECT * FROM test.public /* c */ . orders",
		"SELECT * FROM test.public /* c */ . orders_shadow", sqlshadow.KindRead, use{rs("test.public", "orders")}},
	{"quoted identifiers", `SELECT "Order Lines".id, "Orders".* FROM "Order Lines" JOIN "Orders" ON true`,
		`SELECT "Order Lines_shadow".id, "Orders_shadow".* FROM "Order Lines_shadow" JOIN "Orders_shadow" ON true`,
		sqlshadow.KindRead, use{r("Order Lines"), r("Orders")}},
	{"unquoted upper case folds", "SELECT ORDERS.ID FROM Orders",
		"SELECT orders_shadow.ID FROM orders_shadow", sqlshadow.KindRead, use{r("orders")}},
	{"keyword table", `SELECT "user".id FROM public."user"`,
		`SELECT user_shadow.id FROM public.user_shadow`, sqlshadow.KindRead, use{rs("public", "user")}},
	{"for update of table", "SELECT * FROM orders JOIN items i ON i.oid = orders.id FOR NO KEY UPDATE OF orders, i",
		"SELECT * FROM orders_shadow JOIN items_shadow i ON i.oid = orders_shadow.id FOR NO KEY UPDATE OF orders_shadow, i",
		sqlshadow.KindWrite, use{w("orders"), w("items")}},
	{"insert values", "INSERT INTO orders (id, total) VALUES ($1, $2), ($3, $4)",
		"INSERT INTO orders_shadow (id, total) VALUES ($1, $2), ($3, $4)", sqlshadow.KindWrite, use{w("orders")}},
	{"insert select", "INSERT INTO orders (id) SELECT id FROM carts WHERE carts.ok",
		"INSERT INTO orders_shadow (id) SELECT id FROM carts_shadow WHERE carts_shadow.ok", sqlshadow.KindWrite, use{w("orders"), r("carts")}},
	{"on conflict returning", "INSERT INTO public.orders AS o (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = o.n + EXCLUDED.n RETURNING o.id",
		"INSERT INTO public.orders_shadow AS o (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = o.n + EXCLUDED.n RETURNING o.id",
		sqlshadow.KindWrite, use{ws("public", "orders")}},
	{"on conflict qualified by table", "INSERT INTO orders (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = orders.n + 1 RETURNING orders.*",
		"INSERT INTO orders_shadow (id, n) VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET n = orders_shadow.n + 1 RETURNING orders_shadow.*",
		sqlshadow.KindWrite, use{w("orders")}},
	{"update from", "UPDATE orders SET total = items.price FROM items WHERE items.oid = orders.id RETURNING orders.id",
		"UPDATE orders_shadow SET total = items_shadow.price FROM items_shadow WHERE items_shadow.oid = orders_shadow.id RETURNING orders_shadow.id",
		sqlshadow.KindWrite, use{w("orders"), r("items")}},
	{"delete using", `DELETE FROM ONLY "Orders" o USING items WHERE items.oid = o.id`,
		`DELETE FROM ONLY "Orders_shadow" o USING items_shadow WHERE items_shadow.oid = o.id`,
		sqlshadow.KindWrite, use{w("Orders"), r("items")}},
	{"cte", "WITH big AS (SELECT * FROM orders WHERE total > $1) SELECT big.id FROM big JOIN items ON items.oid = big.id",
		"WITH big AS (SELECT * FROM orders_shadow WHERE total > $1) SELECT big.id FROM big JOIN items_shadow ON items_shadow.oid = big.id",
		sqlshadow.KindRead, use{r("orders"), r("items")}},
	{"recursive cte", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c JOIN orders ON orders.id = c.n",
		"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c JOIN orders_shadow ON orders_shadow.id = c.n",
		sqlshadow.KindRead, use{r("orders")}},
	{"cte shadowing its own table", "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders",
		"WITH orders AS (SELECT * FROM orders_shadow) SELECT * FROM orders", sqlshadow.KindRead, use{r("orders")}},
	{"data-modifying cte", "WITH d AS (DELETE FROM orders WHERE id = $1 RETURNING *) INSERT INTO archive SELECT * FROM d",
		"WITH d AS (DELETE FROM orders_shadow WHERE id = $1 RETURNING *) INSERT INTO archive_shadow SELECT * FROM d",
		sqlshadow.KindWrite, use{w("orders"), w("archive")}},
	{"cte in select is write", "WITH d AS (UPDATE orders SET n = 1 RETURNING id) SELECT * FROM d",
		"WITH d AS (UPDATE orders_shadow SET n = 1 RETURNING id) SELECT * FROM d", sqlshadow.KindWrite, use{w("orders")}},
	{"for update", "SELECT * FROM orders o JOIN items ON items.oid = o.id WHERE o.id = $1 FOR UPDATE OF o",
		"SELECT * FROM orders_shadow o JOIN items_shadow ON items_shadow.oid = o.id WHERE o.id = $1 FOR UPDATE OF o",
		sqlshadow.KindWrite, use{w("orders"), w("items")}},
	{"for share", "SELECT * FROM orders FOR SHARE SKIP LOCKED",
		"SELECT * FROM orders_shadow FOR SHARE SKIP LOCKED", sqlshadow.KindWrite, use{w("orders")}},
	{"merge", "MERGE INTO orders o USING items i ON o.id = i.oid WHEN MATCHED THEN UPDATE SET total = i.price",
		"MERGE INTO orders_shadow o USING items_shadow i ON o.id = i.oid WHEN MATCHED THEN UPDATE SET total = i.price",
		sqlshadow.KindWrite, use{w("orders"), r("items")}},
	{"lock", "LOCK TABLE orders IN SHARE MODE", "LOCK TABLE orders_shadow IN SHARE MODE", sqlshadow.KindWrite, use{w("orders")}},
	{"comments, strings and casts kept", "/* app */ SELECT 'orders', E'a\\'b', $1::text FROM orders -- trailing",
		"/* app */ SELECT 'orders', E'a\\'b', $1::text FROM orders_shadow -- trailing", sqlshadow.KindRead, use{r("orders")}},
	{"trailing semicolon", "DELETE FROM orders WHERE id = $1;",
		"DELETE FROM orders_shadow WHERE id = $1;", sqlshadow.KindWrite, use{w("orders")}},
	{"begin", "BEGIN", "BEGIN", sqlshadow.KindOther, nil},
	{"set", "SET statement_timeout = 1000", "SET statement_timeout = 1000", sqlshadow.KindOther, nil},
	{"set local search_path", "SET LOCAL search_path TO public", "SET LOCAL search_path TO public", sqlshadow.KindOther, nil},
}

func TestRewrite(t *testing.T) {
	d := postgres.New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := d.Rewrite(c.in, suffix)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if res.SQL != c.want {
				t.Errorf("SQL\n got %s\nwant %s", res.SQL, c.want)
			}
			if res.Kind != c.kind {
				t.Errorf("Kind = %v, want %v", res.Kind, c.kind)
			}
			if !equalUses(res.Tables, c.tables) {
				t.Errorf("Tables = %v, want %v", res.Tables, c.tables)
			}
			an, err := d.Rewrite(c.in, nil)
			if err != nil || an.SQL != c.in || an.Kind != c.kind || !equalUses(an.Tables, c.tables) {
				t.Errorf("nil rename: %+v, %v", an, err)
			}
		})
	}
}

// equalUses compares in order: PostgreSQL reports positions, so Tables is
// in order of appearance.
func equalUses(a, b []sqlshadow.Use) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuoting(t *testing.T) {
	for name, want := range map[string]string{
		"plain_name": "SELECT * FROM plain_name",
		"select":     `SELECT * FROM "select"`,
		"Mixed":      `SELECT * FROM "Mixed"`,
		`we"ird`:     `SELECT * FROM "we""ird"`,
		"1st":        `SELECT * FROM "1st"`,
		"été":        `SELECT * FROM "été"`,
	} {
		res, err := postgres.New().Rewrite("SELECT * FROM orders", func(sqlshadow.Table, bool) (string, error) { return name, nil })
		if err != nil || res.SQL != want {
			t.Errorf("rename to %q: got %q, %v; want %q", name, res.SQL, err, want)
		}
	}
}

func TestRefused(t *testing.T) {
	d := postgres.New()
	for _, q := range []string{
		"CREATE TABLE orders (id int)",
		"ALTER TABLE orders ADD COLUMN x int",
		"DROP TABLE orders",
		"TRUNCATE orders",
		"CREATE INDEX i ON orders (id)",
		"GRANT SELECT ON orders TO public",
		"CALL refill(1)",
		"DO $$ BEGIN DELETE FROM orders; END $$",
		"COPY orders FROM STDIN",
		"SELECT * INTO orders_copy FROM orders",
		"CREATE TABLE x AS SELECT * FROM orders",
		"PREPARE s AS DELETE FROM orders",
		"EXECUTE s",
		"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
	} {
		res, err := d.Rewrite(q, suffix)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if res.Kind != sqlshadow.KindDDL || res.SQL != q {
			t.Errorf("%s: got kind %v SQL %q, want ddl and the input", q, res.Kind, res.SQL)
		}
	}
}

// TestExplain: every EXPLAIN, in both syntaxes and whatever its options, is
// KindDDL (refused for load-test traffic) and left unchanged, with its
// tables reported as written for the guard.
func TestExplain(t *testing.T) {
	d := postgres.New()
	for _, q := range []string{
		"EXPLAIN ANALYZE DELETE FROM orders",
		"EXPLAIN ANALYSE DELETE FROM orders",
		"EXPLAIN ANALYZE VERBOSE DELETE FROM orders",
		"EXPLAIN VERBOSE DELETE FROM orders",
		"EXPLAIN (ANALYZE) DELETE FROM orders",
		"EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM orders",
		"EXPLAIN (ANALYZE 1) DELETE FROM orders",
		"EXPLAIN (ANALYZE off) DELETE FROM orders",
		"EXPLAIN (FORMAT json) DELETE FROM orders",
		"EXPLAIN SELECT * FROM orders",
		"EXPLAIN ANALYZE WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x",
	} {
		res, err := d.Rewrite(q, suffix)
		if err != nil || res.Kind != sqlshadow.KindDDL || res.SQL != q {
			t.Errorf("%s: got %+v, %v; want ddl, unchanged", q, res, err)
			continue
		}
		if len(res.Tables) != 1 || res.Tables[0] != w("orders") {
			t.Errorf("%s: tables %v, want orders (written)", q, res.Tables)
		}
	}
}

func TestParseErrors(t *testing.T) {
	d := postgres.New()
	for _, q := range []string{
		"",
		"-- only a comment",
		"SELECT * FROM",
		"SELECT 1; SELECT 2",
		"DELETE FROM orders; DROP TABLE orders",
		"SELEC 1",
		"SELECT `x` FROM t",
	} {
		_, err := d.Rewrite(q, suffix)
		if !errors.Is(err, sqlshadow.ErrParse) {
			t.Errorf("%q: err = %v, want ErrParse", q, err)
		}
	}
}

func TestRenameError(t *testing.T) {
	boom := errors.New("no shadow for payments")
	_, err := postgres.New().Rewrite("SELECT * FROM orders, payments", func(t sqlshadow.Table, _ bool) (string, error) {
		if t.Name == "payments" {
			return "", boom
		}
		return t.Name + "_shadow", nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the rename error", err)
	}
}

func TestConcurrent(t *testing.T) {
	d := postgres.New()
	done := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			for j := 0; j < 40; j++ {
				c := cases[j%len(cases)]
				res, err := d.Rewrite(c.in, suffix)
				if err == nil && res.SQL != c.want {
					err = errors.New("mismatch: " + res.SQL)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
