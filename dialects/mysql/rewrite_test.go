package mysql_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/mysql"
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

var cases = []struct {
	name   string
	in     string
	want   string
	kind   sqlshadow.Kind
	tables []sqlshadow.Use
}{
	{"select", "SELECT id FROM orders WHERE id = ?",
		"SELECT `id` FROM `orders_shadow` WHERE `id`=?", sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"join qualified columns and alias", "SELECT o.id, orders.id, items.* FROM orders JOIN items ON items.oid = orders.id LEFT JOIN users o ON o.id = orders.uid",
		"SELECT `o`.`id`,`orders_shadow`.`id`,`items_shadow`.* FROM (`orders_shadow` JOIN `items_shadow` ON `items_shadow`.`oid`=`orders_shadow`.`id`) LEFT JOIN `users_shadow` AS `o` ON `o`.`id`=`orders_shadow`.`uid`",
		sqlshadow.KindRead, []sqlshadow.Use{r("orders"), r("items"), r("users")}},
	{"subqueries", "SELECT * FROM orders WHERE uid IN (SELECT id FROM users) AND EXISTS (SELECT 1 FROM items i WHERE i.oid = orders.id)",
		"SELECT * FROM `orders_shadow` WHERE `uid` IN (SELECT `id` FROM `users_shadow`) AND EXISTS (SELECT 1 FROM `items_shadow` AS `i` WHERE `i`.`oid`=`orders_shadow`.`id`)",
		sqlshadow.KindRead, []sqlshadow.Use{r("orders"), r("users"), r("items")}},
	{"derived table alias", "SELECT d.n FROM (SELECT count(*) AS n FROM orders) AS d",
		"SELECT `d`.`n` FROM (SELECT COUNT(1) AS `n` FROM `orders_shadow`) AS `d`", sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"union", "SELECT id FROM orders UNION ALL SELECT id FROM archive",
		"SELECT `id` FROM `orders_shadow` UNION ALL SELECT `id` FROM `archive_shadow`", sqlshadow.KindRead, []sqlshadow.Use{r("orders"), r("archive")}},
	{"schema qualified", "SELECT shop.orders.id FROM shop.orders WHERE shop.orders.id = ?",
		"SELECT `shop`.`orders_shadow`.`id` FROM `shop`.`orders_shadow` WHERE `shop`.`orders_shadow`.`id`=?", sqlshadow.KindRead, []sqlshadow.Use{rs("shop", "orders")}},
	{"quoted identifiers", "SELECT `Order Lines`.`id` FROM `Order Lines`",
		"SELECT `Order Lines_shadow`.`id` FROM `Order Lines_shadow`", sqlshadow.KindRead, []sqlshadow.Use{r("Order Lines")}},
	{"insert values placeholders", "INSERT INTO orders (id, total) VALUES (?, ?), (?, ?)",
		"INSERT INTO `orders_shadow` (`id`,`total`) VALUES (?,?),(?,?)", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"insert select", "INSERT INTO orders (id) SELECT id FROM carts WHERE carts.ok = 1",
		"INSERT INTO `orders_shadow` (`id`) SELECT `id` FROM `carts_shadow` WHERE `carts_shadow`.`ok`=1", sqlshadow.KindWrite, []sqlshadow.Use{r("carts"), w("orders")}},
	{"on duplicate key", "INSERT INTO orders (id, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = orders.n + VALUES(n)",
		"INSERT INTO `orders_shadow` (`id`,`n`) VALUES (?,1) ON DUPLICATE KEY UPDATE `n`=`orders_shadow`.`n`+VALUES(`n`)", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"replace", "REPLACE INTO shop.orders (id) VALUES (?)",
		"REPLACE INTO `shop`.`orders_shadow` (`id`) VALUES (?)", sqlshadow.KindWrite, []sqlshadow.Use{ws("shop", "orders")}},
	{"replace select", "REPLACE INTO orders SELECT * FROM carts",
		"REPLACE INTO `orders_shadow` SELECT * FROM `carts_shadow`", sqlshadow.KindWrite, []sqlshadow.Use{r("carts"), w("orders")}},
	{"update", "UPDATE orders SET total = total + ? WHERE orders.id = ?",
		"UPDATE `orders_shadow` SET `total`=`total`+? WHERE `orders_shadow`.`id`=?", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"update multi-table", "UPDATE orders o JOIN items ON items.oid = o.id SET o.total = items.price WHERE o.id = ?",
		"UPDATE `orders_shadow` AS `o` JOIN `items_shadow` ON `items_shadow`.`oid`=`o`.`id` SET `o`.`total`=`items_shadow`.`price` WHERE `o`.`id`=?",
		sqlshadow.KindWrite, []sqlshadow.Use{w("orders"), r("items")}},
	{"update multi-table both", "UPDATE orders, items SET orders.n = 1, items.n = 2 WHERE items.oid = orders.id",
		"UPDATE (`orders_shadow`) JOIN `items_shadow` SET `orders_shadow`.`n`=1, `items_shadow`.`n`=2 WHERE `items_shadow`.`oid`=`orders_shadow`.`id`",
		sqlshadow.KindWrite, []sqlshadow.Use{w("orders"), w("items")}},
	{"delete", "DELETE FROM orders WHERE id = ?;",
		"DELETE FROM `orders_shadow` WHERE `id`=?", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"delete multi-table alias", "DELETE o FROM orders o JOIN items ON items.oid = o.id WHERE items.n = 0",
		"DELETE `o` FROM `orders_shadow` AS `o` JOIN `items_shadow` ON `items_shadow`.`oid`=`o`.`id` WHERE `items_shadow`.`n`=0",
		sqlshadow.KindWrite, []sqlshadow.Use{w("orders"), r("items")}},
	{"delete multi-table names", "DELETE orders, items FROM orders JOIN items ON items.oid = orders.id",
		"DELETE `orders_shadow`,`items_shadow` FROM `orders_shadow` JOIN `items_shadow` ON `items_shadow`.`oid`=`orders_shadow`.`id`",
		sqlshadow.KindWrite, []sqlshadow.Use{w("orders"), w("items")}},
	{"delete using", "DELETE FROM orders USING orders JOIN items ON items.oid = orders.id",
		"DELETE FROM `orders_shadow` USING `orders_shadow` JOIN `items_shadow` ON `items_shadow`.`oid`=`orders_shadow`.`id`",
		sqlshadow.KindWrite, []sqlshadow.Use{w("orders"), r("items")}},
	{"cte", "WITH big AS (SELECT * FROM orders WHERE total > ?) SELECT big.id FROM big JOIN items ON items.oid = big.id",
		"WITH `big` AS (SELECT * FROM `orders_shadow` WHERE `total`>?) SELECT `big`.`id` FROM `big` JOIN `items_shadow` ON `items_shadow`.`oid`=`big`.`id`",
		sqlshadow.KindRead, []sqlshadow.Use{r("orders"), r("items")}},
	{"recursive cte", "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c JOIN orders ON orders.id = c.n",
		"WITH RECURSIVE `c` (`n`) AS (SELECT 1 UNION ALL SELECT `n`+1 FROM `c` WHERE `n`<5) SELECT * FROM `c` JOIN `orders_shadow` ON `orders_shadow`.`id`=`c`.`n`",
		sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"cte shadowing its own table", "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders",
		"WITH `orders` AS (SELECT * FROM `orders_shadow`) SELECT * FROM `orders`", sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"for update", "SELECT * FROM orders WHERE id = ? FOR UPDATE",
		"SELECT * FROM `orders_shadow` WHERE `id`=? FOR UPDATE", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"lock in share mode", "SELECT * FROM orders LOCK IN SHARE MODE",
		"SELECT * FROM `orders_shadow` FOR UPDATE", sqlshadow.KindWrite, []sqlshadow.Use{w("orders")}},
	{"set with subquery", "SET @m = (SELECT max(id) FROM orders)",
		"SET @`m`=(SELECT MAX(`id`) FROM `orders_shadow`)", sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"string literals kept", `SELECT id FROM orders WHERE note = 'it''s \\ "x"' AND tag = "y"`,
		"SELECT `id` FROM `orders_shadow` WHERE `note`='it''s \\\\ \"x\"' AND `tag`='y'", sqlshadow.KindRead, []sqlshadow.Use{r("orders")}},
	{"begin", "BEGIN", "BEGIN", sqlshadow.KindOther, nil},
	{"set", "SET NAMES utf8mb4", "SET NAMES utf8mb4", sqlshadow.KindOther, nil}, // changes session state: refused by sqlshadow
}

// inPlace is the output of the cases the in-place rewrite takes
// (inplace.go): only the renamed names change, written in backquotes. The
// want of each case is the restored tree, the output of the general path
// (taken below by putting a comment in front).
var inPlace = map[string]string{
	"select":                           "SELECT id FROM `orders_shadow` WHERE id = ?",
	"join qualified columns and alias": "SELECT o.id, `orders_shadow`.id, `items_shadow`.* FROM `orders_shadow` JOIN `items_shadow` ON `items_shadow`.oid = `orders_shadow`.id LEFT JOIN `users_shadow` o ON o.id = `orders_shadow`.uid",
	"subqueries":                       "SELECT * FROM `orders_shadow` WHERE uid IN (SELECT id FROM `users_shadow`) AND EXISTS (SELECT 1 FROM `items_shadow` i WHERE i.oid = `orders_shadow`.id)",
	"derived table alias":              "SELECT d.n FROM (SELECT count(*) AS n FROM `orders_shadow`) AS d",
	"union":                            "SELECT id FROM `orders_shadow` UNION ALL SELECT id FROM `archive_shadow`",
	"schema qualified":                 "SELECT shop.`orders_shadow`.id FROM shop.`orders_shadow` WHERE shop.`orders_shadow`.id = ?",
	"insert values placeholders":       "INSERT INTO `orders_shadow` (id, total) VALUES (?, ?), (?, ?)",
	"insert select":                    "INSERT INTO `orders_shadow` (id) SELECT id FROM `carts_shadow` WHERE `carts_shadow`.ok = 1",
	"on duplicate key":                 "INSERT INTO `orders_shadow` (id, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = `orders_shadow`.n + VALUES(n)",
	"replace":                          "REPLACE INTO shop.`orders_shadow` (id) VALUES (?)",
	"replace select":                   "REPLACE INTO `orders_shadow` SELECT * FROM `carts_shadow`",
	"update":                           "UPDATE `orders_shadow` SET total = total + ? WHERE `orders_shadow`.id = ?",
	"update multi-table":               "UPDATE `orders_shadow` o JOIN `items_shadow` ON `items_shadow`.oid = o.id SET o.total = `items_shadow`.price WHERE o.id = ?",
	"update multi-table both":          "UPDATE `orders_shadow`, `items_shadow` SET `orders_shadow`.n = 1, `items_shadow`.n = 2 WHERE `items_shadow`.oid = `orders_shadow`.id",
	"delete":                           "DELETE FROM `orders_shadow` WHERE id = ?;",
	"delete multi-table alias":         "DELETE o FROM `orders_shadow` o JOIN `items_shadow` ON `items_shadow`.oid = o.id WHERE `items_shadow`.n = 0",
	"delete multi-table names":         "DELETE `orders_shadow`, `items_shadow` FROM `orders_shadow` JOIN `items_shadow` ON `items_shadow`.oid = `orders_shadow`.id",
	"delete using":                     "DELETE FROM `orders_shadow` USING `orders_shadow` JOIN `items_shadow` ON `items_shadow`.oid = `orders_shadow`.id",
	"cte":                              "WITH big AS (SELECT * FROM `orders_shadow` WHERE total > ?) SELECT big.id FROM big JOIN `items_shadow` ON `items_shadow`.oid = big.id",
	"recursive cte":                    "WITH RECURSIVE c (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c JOIN `orders_shadow` ON `orders_shadow`.id = c.n",
	"for update":                       "SELECT * FROM `orders_shadow` WHERE id = ? FOR UPDATE",
	"lock in share mode":               "SELECT * FROM `orders_shadow` LOCK IN SHARE MODE",
}

func TestRewrite(t *testing.T) {
	d := mysql.New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := d.Rewrite(c.in, suffix)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			want := c.want
			if s, ok := inPlace[c.name]; ok {
				want = s
			}
			if res.SQL != want {
				t.Errorf("SQL\n got %s\nwant %s", res.SQL, want)
			}
			if c.want != c.in {
				gen, err := d.Rewrite("/* general path */ "+c.in, suffix)
				if err != nil || gen.SQL != c.want || gen.Kind != c.kind || !sameUses(gen.Tables, c.tables) {
					t.Errorf("general path: %+v, %v; want SQL %s", gen, err, c.want)
				}
			}
			if res.Kind != c.kind {
				t.Errorf("Kind = %v, want %v", res.Kind, c.kind)
			}
			if !sameUses(res.Tables, c.tables) {
				t.Errorf("Tables = %v, want %v", res.Tables, c.tables)
			}
			// Analysis only: same findings, text untouched.
			an, err := d.Rewrite(c.in, nil)
			if err != nil || an.SQL != c.in || an.Kind != c.kind || !sameUses(an.Tables, c.tables) {
				t.Errorf("nil rename: %+v, %v", an, err)
			}
		})
	}
}

// sameUses compares as sets: the parser's visiting order is not the text
// order for every statement shape.
func sameUses(a, b []sqlshadow.Use) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[sqlshadow.Use]int{}
	for _, u := range a {
		m[u]++
	}
	for _, u := range b {
		m[u]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestRefused(t *testing.T) {
	d := mysql.New()
	for _, q := range []string{
		"CREATE TABLE orders (id INT)",
		"ALTER TABLE orders ADD COLUMN x INT",
		"DROP TABLE orders",
		"TRUNCATE TABLE orders",
		"RENAME TABLE orders TO o2",
		"CREATE INDEX i ON orders (id)",
		"GRANT SELECT ON test.orders TO 'u'@'%'",
		"CALL refill(1)",
		"LOAD DATA INFILE '/tmp/x' INTO TABLE orders",
		"SELECT * FROM orders INTO OUTFILE '/tmp/x'",
		"PREPARE s FROM 'DELETE FROM orders'",
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

func TestParseErrors(t *testing.T) {
	d := mysql.New()
	for _, q := range []string{
		"",
		"SELECT * FROM",
		"SELECT 1; SELECT 2",
		"DELETE FROM orders; DROP TABLE orders",
		"INSERT INTO orders VALUES (1) RETURNING id +",
		"INSERT INTO orders VALUES (1), (2) RETURNING id FROM x",
		"UPDATE orders SET total = 1 RETURNING id",
		"SELEC 1",
	} {
		_, err := d.Rewrite(q, suffix)
		if !errors.Is(err, sqlshadow.ErrParse) {
			t.Errorf("%q: err = %v, want ErrParse", q, err)
		}
	}
}

func TestRenameError(t *testing.T) {
	boom := errors.New("no shadow for payments")
	_, err := mysql.New().Rewrite("SELECT * FROM orders JOIN payments", func(t sqlshadow.Table, _ bool) (string, error) {
		if t.Name == "payments" {
			return "", boom
		}
		return t.Name + "_shadow", nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the rename error", err)
	}
}

func TestRenameArguments(t *testing.T) {
	var got []string
	_, err := mysql.New().Rewrite("INSERT INTO shop.orders SELECT * FROM carts JOIN carts c2", func(t sqlshadow.Table, write bool) (string, error) {
		s := t.String()
		if write {
			s += "(w)"
		}
		got = append(got, s)
		return t.Name + "_s", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// One call per distinct (table, write).
	if want := []string{"carts", "shop.orders(w)"}; !reflect.DeepEqual(sorted(got), want) {
		t.Fatalf("rename called with %v, want %v", got, want)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if strings.Compare(out[j], out[i]) < 0 {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestConcurrent(t *testing.T) {
	d := mysql.New()
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				c := cases[j%len(cases)]
				res, err := d.Rewrite(c.in, suffix)
				want := c.want
				if s, ok := inPlace[c.name]; ok {
					want = s
				}
				if err == nil && res.SQL != want {
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
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
