package mysql_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// FuzzRewrite checks, for any input: no panic; a rewritten statement
// re-parses; and every table it references is the shadow of a table of the
// input (no production table is left in a marked statement).
func FuzzRewrite(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	for _, s := range []string{
		"SELECT * FROM a, b AS c, (SELECT * FROM d) e WHERE a.x = c.y",
		"DELETE a, b FROM a JOIN b USING (id)",
		"WITH a AS (SELECT 1), b AS (SELECT * FROM a JOIN t) SELECT * FROM b, a",
		"UPDATE t SET t.a = (SELECT max(a) FROM u WHERE u.id = t.id)",
		"SELECT * FROM t WHERE x = ? FOR UPDATE OF t",
		"INSERT INTO t (a) VALUES ((SELECT a FROM u LIMIT 1))",
		"SELECT `a``b`.* FROM `a``b`",
		"SHOW COLUMNS FROM t",
		"LOCK TABLES t WRITE, u READ",
		"EXPLAIN SELECT * FROM t",
		"INSERT INTO t (a) VALUES (?) RETURNING `id`, b",
		"DELETE FROM t RETURNING *",
		"INSERT INTO t (a) VALUES (1) RETURNING a + 1, t.b, (SELECT c FROM u)",
		"DELETE FROM t WHERE a = 1 RETURNING t.a, f(b)",
		"/* comment */ SELECT 1 -- x",
		// in-place rewrite edges (inplace.go): names spelled like a
		// table, digits after a dot, introducers, keywords as names
		"SELECT orders FROM orders",
		"SELECT o.orders FROM orders o JOIN orders ON orders.id = o.id",
		"SELECT `5` FROM db.5",
		"SELECT t. 5 FROM t",
		"SELECT 1.5, .5e3, x'41', _utf8mb4'a' FROM x",
		"SELECT `status`.id FROM status JOIN `Status` USING (id)",
		"WITH t_shadow AS (SELECT 1) SELECT * FROM t, t_shadow",
		"SELECT * FROM t AS t_shadow WHERE t.id = 1",
		"UPDATE t, u SET t.a = u.b, u.c = 1",
		"SELECT * FROM t WHERE a = 'x\\' OR b = 'it''s'",
		"SELECT a`b` FROM t`u` WHERE u.a = 1",
	} {
		f.Add(s)
	}
	d := mysql.New()
	f.Fuzz(func(t *testing.T, q string) {
		res, err := d.Rewrite(q, suffix)
		if err != nil {
			return
		}
		if res.Kind == sqlshadow.KindDDL {
			if res.SQL != q {
				t.Fatalf("DDL rewritten: %q -> %q", q, res.SQL)
			}
			return
		}
		if len(res.Tables) > 0 && res.SQL == q && len(res.ExecComments) == 0 {
			t.Fatalf("tables %v but statement unchanged: %q", res.Tables, q)
		}
		again, err := d.Rewrite(res.SQL, nil)
		if err != nil {
			t.Fatalf("output does not re-parse: %q -> %q: %v", q, res.SQL, err)
		}
		if res.Verified != nil && !reflect.DeepEqual(*res.Verified, again) {
			// The Rewriter checks Verified instead of re-parsing: it must
			// be exactly the analysis of the output.
			t.Fatalf("%q -> %q: Verified %+v, re-parse %+v", q, res.SQL, *res.Verified, again)
		}
		prod := map[string]bool{}
		for _, u := range res.Tables {
			prod[strings.ToLower(u.Table.String())] = true
		}
		for _, u := range again.Tables {
			name, ok := strings.CutSuffix(strings.ToLower(u.Table.String()), "_shadow")
			if !ok || !prod[name] {
				t.Fatalf("%q -> %q references %s, not a shadow of %v", q, res.SQL, u.Table, res.Tables)
			}
		}
	})
}
