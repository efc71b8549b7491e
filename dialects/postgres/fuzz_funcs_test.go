package postgres_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// FuzzMarkedFuncs checks, for any statement a Rewriter lets through for
// load-test traffic: it calls only functions known to be side-effect free,
// changes no session state, and every sequence it names in a string is a
// shadow one.
func FuzzMarkedFuncs(f *testing.F) {
	for _, s := range []string{
		"SELECT f()", "SELECT now(), count(*) FROM t", "SELECT * FROM f()", "SELECT nextval('s')",
		"SELECT nextval('public.s'::regclass)", "SELECT setval('\"S\"', 1)", "SELECT 's'::regclass",
		"SELECT set_config('a', 'b', false)", "SELECT set_config('a', 'b', true)", "SET x = 1",
		"SET LOCAL x = 1", "SELECT 1 OPERATOR(public.+) 2", "INSERT INTO t VALUES (nextval('t_id_seq'))",
		"SELECT pg_catalog.lower(x) FROM pg_class", "SELECT currval(E's')",
	} {
		f.Add(s)
	}
	d := postgres.New()
	rw, err := sqlshadow.New(d)
	if err != nil {
		f.Fatal(err)
	}
	m := propagation.Mark{Run: "fuzz"}
	f.Fuzz(func(t *testing.T, q string) {
		out, err := rw.Rewrite(m, q)
		if err != nil {
			return
		}
		res, err := d.Rewrite(out, nil)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", q, out, err)
		}
		for _, fn := range res.Funcs {
			if !fn.Safe {
				t.Fatalf("%q -> %q calls %s", q, out, fn)
			}
		}
		if res.Session != "" {
			t.Fatalf("%q -> %q changes session state: %s", q, out, res.Session)
		}
		for _, u := range res.Tables {
			if !rw.IsShadow(u.Table) && !sqlshadow.IsCatalog("postgres", u.Table) {
				t.Fatalf("%q -> %q still names %s", q, out, u.Table)
			}
		}
	})
}
