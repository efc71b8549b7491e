package postgres_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/postgres"
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
		`SELECT * FROM a, b AS c, (SELECT * FROM d) e WHERE a.x = c.y`,
		`WITH a AS (SELECT 1), b AS (SELECT * FROM a JOIN t ON true) SELECT * FROM b, a`,
		`UPDATE t SET a = (SELECT max(a) FROM u WHERE u.id = t.id)`,
		`SELECT U&"d\0061t\+000061" FROM U&"t\0061"`,
		`SELECT "a""b".* FROM "a""b"`,
		`INSERT INTO s.t VALUES (1) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING`,
		`SELECT * FROM t TABLESAMPLE SYSTEM (10)`,
		`TABLE t`,
		`VALUES (1), (2)`,
		`SELECT (t).x, t FROM t`,
		"SELECT $$orders$$ FROM orders",
	} {
		f.Add(s)
	}
	d := postgres.New()
	f.Fuzz(func(t *testing.T, q string) {
		res, err := d.Rewrite(q, func(tb sqlshadow.Table, _ bool) (string, error) { return tb.Name + "_shadow", nil })
		if err != nil {
			return
		}
		if res.Kind == sqlshadow.KindDDL {
			if res.SQL != q {
				t.Fatalf("DDL rewritten: %q -> %q", q, res.SQL)
			}
			return
		}
		if len(res.Tables) > 0 && res.SQL == q {
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
		prod := map[sqlshadow.Table]bool{}
		for _, u := range res.Tables {
			prod[u.Table] = true
		}
		for _, u := range again.Tables {
			name, ok := strings.CutSuffix(u.Table.Name, "_shadow")
			if !ok || !prod[sqlshadow.Table{Schema: u.Table.Schema, Name: name}] {
				t.Fatalf("%q -> %q references %s, not a shadow of %v", q, res.SQL, u.Table, res.Tables)
			}
		}
	})
}
