package sqlite_test

import (
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

const schema = `
CREATE TABLE %[1]s (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE orders%[2]s (id INTEGER PRIMARY KEY, user_id INT, total INT, status TEXT);
CREATE TABLE items%[2]s (id INTEGER PRIMARY KEY, order_id INT, sku TEXT, qty INT);
CREATE TABLE blocked%[2]s (user_id INT);
CREATE INDEX orders_idx ON orders%[2]s(user_id);
`

var (
	dbOnce           sync.Once
	prodDB, shadowDB *sql.DB
	dbErr            error
)

// oracles opens two in-memory SQLite databases: one with the production
// tables only, one with the shadow tables only. A rewritten statement that
// prepares on the second names no production table.
func oracles(t testing.TB) (*sql.DB, *sql.DB) {
	dbOnce.Do(func() {
		open := func(suffix string) *sql.DB {
			db, err := sql.Open("sqlite", "file::memory:")
			if err != nil {
				dbErr = err
				return nil
			}
			db.SetMaxOpenConns(1)
			ddl := strings.NewReplacer("%[1]s", "users"+suffix, "%[2]s", suffix).Replace(schema)
			if _, err := db.Exec(ddl); err != nil {
				dbErr = err
			}
			return db
		}
		prodDB, shadowDB = open(""), open("_shadow")
	})
	if dbErr != nil {
		t.Fatal(dbErr)
	}
	return prodDB, shadowDB
}

func suffix(t sqlshadow.Table, write bool) (string, error) { return t.Name + "_shadow", nil }

var cases = []struct {
	name, in, want string
	kind           sqlshadow.Kind
	tables         string // "name" or "name!" for writes, space separated
	noOracle       bool
}{
	{"simple", "SELECT * FROM orders WHERE id = ?", "SELECT * FROM orders_shadow WHERE id = ?", sqlshadow.KindRead, "orders", false},
	{"join aliases", "SELECT o.id, u.name FROM orders o JOIN users AS u ON u.id = o.user_id", "SELECT o.id, u.name FROM orders_shadow o JOIN users_shadow AS u ON u.id = o.user_id", sqlshadow.KindRead, "orders users", false},
	{"qualified column", "SELECT orders.id FROM orders", "SELECT orders_shadow.id FROM orders_shadow", sqlshadow.KindRead, "orders", false},
	{"double quotes", `SELECT "orders"."id" FROM "orders"`, `SELECT "orders_shadow"."id" FROM "orders_shadow"`, sqlshadow.KindRead, "orders", false},
	{"gorm backticks", "SELECT * FROM `orders` WHERE `orders`.`id` = ? ORDER BY `orders`.`id` LIMIT 1", "SELECT * FROM `orders_shadow` WHERE `orders_shadow`.`id` = ? ORDER BY `orders_shadow`.`id` LIMIT 1", sqlshadow.KindRead, "orders", false},
	{"brackets", "SELECT [orders].id FROM [orders]", "SELECT [orders_shadow].id FROM [orders_shadow]", sqlshadow.KindRead, "orders", false},
	{"subquery", "SELECT * FROM orders WHERE user_id IN (SELECT id FROM users WHERE users.name = 'orders')", "SELECT * FROM orders_shadow WHERE user_id IN (SELECT id FROM users_shadow WHERE users_shadow.name = 'orders')", sqlshadow.KindRead, "orders users", false},
	{"correlated", "SELECT (SELECT count(*) FROM items WHERE items.order_id = orders.id) AS n FROM orders", "SELECT (SELECT count(*) FROM items_shadow WHERE items_shadow.order_id = orders_shadow.id) AS n FROM orders_shadow", sqlshadow.KindRead, "items orders", false},
	{"cte", "WITH recent AS (SELECT * FROM orders WHERE id > 10) SELECT recent.id FROM recent JOIN users ON users.id = recent.user_id", "WITH recent AS (SELECT * FROM orders_shadow WHERE id > 10) SELECT recent.id FROM recent JOIN users_shadow ON users_shadow.id = recent.user_id", sqlshadow.KindRead, "orders users", false},
	{"recursive cte", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 5) SELECT n FROM c", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 5) SELECT n FROM c", sqlshadow.KindRead, "", false},
	{"insert select", "INSERT INTO orders (id, user_id) SELECT id, id FROM users", "INSERT INTO orders_shadow (id, user_id) SELECT id, id FROM users_shadow", sqlshadow.KindWrite, "orders! users", false},
	{"upsert returning", "INSERT INTO `orders` (`user_id`,`total`) VALUES (?,?),(?,?) ON CONFLICT (`id`) DO UPDATE SET `total`=excluded.`total` RETURNING `id`", "INSERT INTO `orders_shadow` (`user_id`,`total`) VALUES (?,?),(?,?) ON CONFLICT (`id`) DO UPDATE SET `total`=excluded.`total` RETURNING `id`", sqlshadow.KindWrite, "orders!", false},
	{"insert or replace", "INSERT OR REPLACE INTO orders DEFAULT VALUES", "INSERT OR REPLACE INTO orders_shadow DEFAULT VALUES", sqlshadow.KindWrite, "orders!", false},
	{"replace", "REPLACE INTO items(id, sku) VALUES (1, 'a')", "REPLACE INTO items_shadow(id, sku) VALUES (1, 'a')", sqlshadow.KindWrite, "items!", false},
	{"update from", "UPDATE orders SET total = items.qty FROM items WHERE items.order_id = orders.id", "UPDATE orders_shadow SET total = items_shadow.qty FROM items_shadow WHERE items_shadow.order_id = orders_shadow.id", sqlshadow.KindWrite, "orders! items", false},
	{"update self read", "UPDATE orders SET total = (SELECT max(total) FROM orders) WHERE id = ?", "UPDATE orders_shadow SET total = (SELECT max(total) FROM orders_shadow) WHERE id = ?", sqlshadow.KindWrite, "orders! orders", false},
	{"delete schema", "DELETE FROM main.orders WHERE orders.id = 1 RETURNING *", "DELETE FROM main.orders_shadow WHERE orders_shadow.id = 1 RETURNING *", sqlshadow.KindWrite, "main.orders!", false},
	{"schema column", "SELECT main.orders.id FROM main.orders", "SELECT main.orders_shadow.id FROM main.orders_shadow", sqlshadow.KindRead, "main.orders", false},
	{"union order", "SELECT id FROM orders UNION SELECT id FROM items ORDER BY id LIMIT 5 OFFSET 1", "SELECT id FROM orders_shadow UNION SELECT id FROM items_shadow ORDER BY id LIMIT 5 OFFSET 1", sqlshadow.KindRead, "orders items", false},
	{"in table", "SELECT * FROM users WHERE id IN blocked", "SELECT * FROM users_shadow WHERE id IN blocked_shadow", sqlshadow.KindRead, "users blocked", false},
	{"alias shadows table name", "SELECT users.id FROM orders AS users", "SELECT users.id FROM orders_shadow AS users", sqlshadow.KindRead, "orders", false},
	{"window", "SELECT id, row_number() OVER (PARTITION BY orders.user_id ORDER BY orders.id) FROM orders", "SELECT id, row_number() OVER (PARTITION BY orders_shadow.user_id ORDER BY orders_shadow.id) FROM orders_shadow", sqlshadow.KindRead, "orders", false},
	{"filter", "SELECT count(*) FILTER (WHERE orders.total > 0) FROM orders", "SELECT count(*) FILTER (WHERE orders_shadow.total > 0) FROM orders_shadow", sqlshadow.KindRead, "orders", false},
	{"derived table", "SELECT * FROM (SELECT * FROM orders) AS sub WHERE sub.id = 1", "SELECT * FROM (SELECT * FROM orders_shadow) AS sub WHERE sub.id = 1", sqlshadow.KindRead, "orders", false},
	{"joins", "SELECT * FROM orders LEFT OUTER JOIN items USING (id) CROSS JOIN users, blocked", "SELECT * FROM orders_shadow LEFT OUTER JOIN items_shadow USING (id) CROSS JOIN users_shadow, blocked_shadow", sqlshadow.KindRead, "orders items users blocked", false},
	{"comments kept", "SELECT /* orders */ * FROM orders -- orders\n", "SELECT /* orders */ * FROM orders_shadow -- orders\n", sqlshadow.KindRead, "orders", false},
	{"exists", "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM orders)", "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM orders_shadow)", sqlshadow.KindRead, "orders", false},
	{"indexed by", "SELECT * FROM orders INDEXED BY orders_idx WHERE user_id = 1", "SELECT * FROM orders_shadow INDEXED BY orders_idx WHERE user_id = 1", sqlshadow.KindRead, "orders", false},
	{"case folding", "select * from Orders where Orders.id=1;", "select * from Orders_shadow where Orders_shadow.id=1;", sqlshadow.KindRead, "Orders", false},
	{"case expr", "SELECT CASE WHEN o.total > 1 THEN 'big' ELSE 'small' END, CAST(o.total AS TEXT) FROM orders o WHERE o.status LIKE 'a%' ESCAPE '\\'", "SELECT CASE WHEN o.total > 1 THEN 'big' ELSE 'small' END, CAST(o.total AS TEXT) FROM orders_shadow o WHERE o.status LIKE 'a%' ESCAPE '\\'", sqlshadow.KindRead, "orders", false},
	{"values", "VALUES (1, 2), (3, 4)", "VALUES (1, 2), (3, 4)", sqlshadow.KindRead, "", false},
	{"json_each", "SELECT json_each.value FROM orders, json_each(orders.status)", "SELECT json_each.value FROM orders_shadow, json_each(orders_shadow.status)", sqlshadow.KindRead, "orders", false},
	{"jsonb_each call", "SELECT value FROM orders, jsonb_each(orders.status)", "SELECT value FROM orders_shadow, jsonb_each(orders_shadow.status)", sqlshadow.KindRead, "orders", false},
	{"cte named json_each", "WITH json_each AS (SELECT id FROM orders) SELECT json_each.id FROM json_each", "WITH json_each AS (SELECT id FROM orders_shadow) SELECT json_each.id FROM json_each", sqlshadow.KindRead, "orders", false},
	{"with delete", "WITH old AS (SELECT id FROM orders WHERE total < 0) DELETE FROM orders WHERE id IN old", "WITH old AS (SELECT id FROM orders_shadow WHERE total < 0) DELETE FROM orders_shadow WHERE id IN old", sqlshadow.KindWrite, "orders orders!", false},
	{"keyword-named table is quoted", "SELECT * FROM \"order\"", "SELECT * FROM \"order_shadow\"", sqlshadow.KindRead, "order", true},
	{"begin", "BEGIN IMMEDIATE TRANSACTION", "BEGIN IMMEDIATE TRANSACTION", sqlshadow.KindOther, "", true},
	{"savepoint", "RELEASE SAVEPOINT sp1", "RELEASE SAVEPOINT sp1", sqlshadow.KindOther, "", true},
	{"ddl", "CREATE TABLE orders2 (id INT)", "CREATE TABLE orders2 (id INT)", sqlshadow.KindDDL, "", true},
	{"pragma", "PRAGMA table_info(orders)", "PRAGMA table_info(orders)", sqlshadow.KindDDL, "", true},
}

func TestRewrite(t *testing.T) {
	prod, shadowOnly := oracles(t)
	d := sqlite.New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := d.Rewrite(c.in, suffix)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if res.SQL != c.want {
				t.Errorf("got  %s\nwant %s", res.SQL, c.want)
			}
			if res.Kind != c.kind {
				t.Errorf("kind %v, want %v", res.Kind, c.kind)
			}
			var got []string
			for _, u := range res.Tables {
				s := u.Table.String()
				if u.Write {
					s += "!"
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != c.tables {
				t.Errorf("tables %q, want %q", strings.Join(got, " "), c.tables)
			}
			if c.noOracle {
				return
			}
			// The real SQLite engine accepts the input on the production
			// schema and the output on a schema of shadow tables only.
			if st, err := prod.Prepare(c.in); err != nil {
				t.Fatalf("production schema rejects the input: %v", err)
			} else {
				st.Close()
			}
			st, err := shadowOnly.Prepare(res.SQL)
			if err != nil {
				t.Fatalf("shadow-only schema rejects the output (a table was missed?): %v", err)
			}
			st.Close()
		})
	}
}

func TestAnalyseOnly(t *testing.T) {
	res, err := sqlite.New().Rewrite("SELECT * FROM orders", nil)
	if err != nil || res.SQL != "SELECT * FROM orders" || len(res.Tables) != 1 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

func TestRefused(t *testing.T) {
	for _, q := range []string{
		"",
		";",
		"SELECT * FROM orders; DELETE FROM orders",
		"SELECT x.id FROM orders",
		"SELCT * FROM orders",
		"SELECT * FROM orders WHERE (",
		"WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
		"SELECT * FROM pragma_table_info('orders')",
		// Table-valued functions named bare fail closed (a real table of
		// that name would win in SQLite); only called JSON ones pass.
		"SELECT * FROM pragma_table_info WHERE arg = 'orders'",
		"SELECT name FROM PRAGMA_FUNCTION_LIST",
		"SELECT * FROM orders, dbstat",
		"SELECT * FROM sqlite_dbpage",
		"SELECT * FROM generate_series WHERE start = 1 AND stop = 3",
		"SELECT * FROM generate_series(1, 3)",
		"SELECT * FROM main.json_each WHERE json = '[1]'",
		"SELECT * FROM temp.json_each('[1]')",
		"SELECT 1 WHERE 1 IN json_each",
		// bare: a real table named json_each would win over the function
		"SELECT json_each.value FROM orders, json_each",
		"SELECT json_each.value FROM orders, json_each WHERE json_each.json = orders.status",
		"SELECT j.key FROM orders JOIN JSON_TREE AS j ON j.json = orders.status",
		"SELECT \"jsonb_tree\".atom FROM \"jsonb_tree\" WHERE json = ?",
		"SELECT 1 WHERE 1 IN pragma_table_list",
		"SELECT * FROM Fts5Vocab",
		"SELECT * FROM CARRAY, orders",
		"SELECT * FROM orders WHERE id IN Completion",
		"SELECT json_each.value FROM orders, json_each j",
		"SELECT * FROM 'orders'",
		"EXPLAIN",
		"EXPLAIN QUERY SELECT * FROM orders",
		"EXPLAIN EXPLAIN SELECT * FROM orders",
		"EXPLAIN SELECT * FROM",
		"SELECT 'unterminated",
		"WITH recent AS (SELECT 1) INSERT INTO recent SELECT 1",
		"SELECT a FROM orders JOIN items ON items.id = x.id",
		"UPDATE orders SET orders.total = 1",
		"SELECT * FROM orders o WHERE orders.id = 1",
	} {
		_, err := sqlite.New().Rewrite(q, suffix)
		if !errors.Is(err, sqlshadow.ErrParse) {
			t.Errorf("%q: err = %v, want ErrParse", q, err)
		}
	}
}

func TestRenameErrorAborts(t *testing.T) {
	boom := errors.New("boom")
	_, err := sqlite.New().Rewrite("SELECT * FROM orders", func(sqlshadow.Table, bool) (string, error) { return "", boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzRewrite(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	f.Add("SELECT * FROM a JOIN (b JOIN c ON b.x = c.x) ON a.y = b.y")
	f.Add("WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x")
	f.Add("SELECT 0x1F, 1e-3, X'00', ?1, :a, @b, $c")
	prod, shadowOnly := oracles(f)
	d := sqlite.New()
	f.Fuzz(func(t *testing.T, q string) {
		res, err := d.Rewrite(q, suffix)
		if err != nil {
			if !errors.Is(err, sqlshadow.ErrParse) {
				t.Fatalf("error not wrapping ErrParse: %v", err)
			}
			return
		}
		again, err := d.Rewrite(res.SQL, nil)
		if err != nil {
			t.Fatalf("output does not parse again: %v\nin:  %q\nout: %q", err, q, res.SQL)
		}
		if res.Verified != nil && !reflect.DeepEqual(*res.Verified, again) {
			// The Rewriter checks Verified instead of re-parsing: it must
			// be exactly the analysis of the output.
			t.Fatalf("%q -> %q: Verified %+v, re-parse %+v", q, res.SQL, *res.Verified, again)
		}
		if len(again.Tables) != len(res.Tables) {
			t.Fatalf("table count changed: %v -> %v", res.Tables, again.Tables)
		}
		for _, u := range again.Tables {
			if !strings.HasSuffix(strings.ToLower(u.Table.Name), "_shadow") {
				t.Fatalf("production table %s left in %q (from %q)", u.Table, res.SQL, q)
			}
		}
		if res.Kind != sqlshadow.KindRead && res.Kind != sqlshadow.KindWrite {
			return
		}
		st, err := prod.Prepare(q)
		if err != nil {
			return
		}
		st.Close()
		st, err = shadowOnly.Prepare(res.SQL)
		if err != nil {
			t.Fatalf("SQLite accepts %q on production tables but rejects the rewrite %q on shadow tables: %v", q, res.SQL, err)
		}
		st.Close()
	})
}

// TestExplain: EXPLAIN and EXPLAIN QUERY PLAN are parsed (their tables are
// reported, for the guard) but are KindDDL and never rewritten, so
// load-test traffic is refused.
func TestExplain(t *testing.T) {
	for _, q := range []string{
		"EXPLAIN DELETE FROM orders",
		"EXPLAIN QUERY PLAN SELECT * FROM orders",
		"explain query plan insert into orders select * from orders",
	} {
		res, err := sqlite.New().Rewrite(q, suffix)
		if err != nil || res.Kind != sqlshadow.KindDDL || res.SQL != q || len(res.Tables) == 0 {
			t.Errorf("%s: got %+v, %v; want ddl, unchanged, with tables", q, res, err)
		}
	}
}

// TestVerifiedRenames: whatever the new names (keywords, table-valued
// function names, another table's name, a change of letter case only,
// non-ASCII), a Verified result is exactly the analysis of the output,
// and the renamings that would change it leave Verified nil.
func TestVerifiedRenames(t *testing.T) {
	queries := []string{
		"SELECT id FROM orders",
		"SELECT o.id, items.price FROM orders o JOIN items ON items.oid = o.id WHERE o.uid = ?",
		"UPDATE orders SET total = items.price FROM items WHERE items.oid = orders.id AND orders.id = ?",
		"INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total = orders.total + excluded.total",
		"WITH k AS (SELECT 1) SELECT * FROM orders, k WHERE orders.x = k.x",
		`SELECT "".x FROM orders, ""`,
	}
	for _, to := range []string{"json_each", "pragma_table_info", "select", "items", "ORDERS", "k", "excluded", "Orders_shadow", "\u212Aelvin", "x y", "orders_shadow"} {
		rename := func(tb sqlshadow.Table, _ bool) (string, error) {
			if tb.Name == "orders" {
				return to, nil
			}
			return tb.Name + "_shadow", nil
		}
		for _, q := range queries {
			res, err := sqlite.New().Rewrite(q, rename)
			if err != nil {
				t.Fatalf("%q -> %s: %v", q, to, err)
			}
			again, err := sqlite.New().Rewrite(res.SQL, nil)
			if res.Verified != nil && (err != nil || !reflect.DeepEqual(*res.Verified, again)) {
				t.Errorf("%q -> %q: Verified %+v, re-parse %+v, %v", q, res.SQL, *res.Verified, again, err)
			}
			if to == "orders_shadow" && res.Verified == nil {
				t.Errorf("%q -> %q: no Verified for a plain renaming", q, res.SQL)
			}
			if to == "json_each" && res.Verified != nil {
				t.Errorf("%q -> %q: Verified for a renaming that changes the analysis", q, res.SQL)
			}
		}
	}
}
