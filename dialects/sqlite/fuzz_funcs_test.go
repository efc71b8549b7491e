package sqlite_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// FuzzMarkedFuncs checks, for any statement a Rewriter lets through for
// load-test traffic: it calls only functions known to be side-effect free,
// changes no session state, and every sequence it names in a string is a
// shadow one.
func FuzzMarkedFuncs(f *testing.F) {
	for _, s := range []string{
		"SELECT f()", "SELECT count(*), max(id) FROM t", "SELECT x IN (1, 2) FROM t", "INSERT INTO t VALUES (f(1))",
		"SELECT CAST(x AS TEXT), EXISTS (SELECT 1) FROM t", "SELECT row_number() OVER (PARTITION BY a) FROM t",
		"SELECT count(*) FILTER (WHERE a) FROM t", "SELECT load_extension('x')", "SELECT \"f\"()", "SELECT * FROM sqlite_master",
		"DELETE FROM sqlite_sequence", "SELECT replace(a, 'b', 'c') FROM t",
	} {
		f.Add(s)
	}
	d := sqlite.New()
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
			if !rw.IsShadow(u.Table) && !sqlshadow.IsCatalog("sqlite", u.Table) {
				t.Fatalf("%q -> %q still names %s", q, out, u.Table)
			}
		}
	})
}
