package mysql_test

import (
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// FuzzExecComments checks the executable-comment scanner: no panic, every
// content is a piece of the input, and a comment built around a body free
// of quotes and comment characters is found with exactly that body.
func FuzzExecComments(f *testing.F) {
	for _, s := range [][2]string{
		{"SELECT ", " 1, "}, {"SELECT 1 ", "50100 , 2"}, {"INSERT INTO t VALUES (1) ", "100000 , (2)"},
		{"SELECT 'a''", "x"}, {"SELECT `x` ", "M!100000 f()"}, {"-- c\nSELECT ", " orders_shadow.id"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pre, body string) {
		for _, c := range mysql.ExecComments(pre + body) {
			if !strings.Contains(pre+body, c) {
				t.Fatalf("content %q is not part of %q", c, pre+body)
			}
		}
		if strings.ContainsAny(pre, "'\"`#-/*\\") || strings.ContainsAny(body, "'\"`#-/*\\0123456789") {
			return
		}
		got := mysql.ExecComments(pre + "/*!" + body + "*/ SELECT 1")
		if len(got) != 1 || got[0] != body {
			t.Fatalf("ExecComments(%q) = %q, want [%q]", pre+"/*!"+body+"*/", got, body)
		}
		got = mysql.ExecComments(pre + "/*M!100000" + body + "*/")
		if len(got) != 1 || got[0] != body {
			t.Fatalf("ExecComments(%q) = %q, want [%q]", pre+"/*M!100000"+body+"*/", got, body)
		}
	})
}

// FuzzMarkedFuncs checks, for any statement a Rewriter lets through for
// load-test traffic: it calls only functions known to be side-effect free,
// changes no session state and holds no executable comment.
func FuzzMarkedFuncs(f *testing.F) {
	for _, s := range []string{
		"SELECT f()", "SELECT NOW(), COUNT(*) FROM t", "DO f()", "SET @x = f()",
		"INSERT INTO t VALUES (f())", "SELECT NEXTVAL(s)", "SELECT db.f(1)",
		"SELECT /*!50100 f(), */ 1", "SELECT @x := 1", "SELECT IF(a, b(), c) FROM t",
		"SELECT * FROM t WHERE a IN (SELECT g(x) FROM u)", "SELECT LAST_INSERT_ID(1)",
	} {
		f.Add(s)
	}
	d := mysql.New()
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
		if res.Session != "" || len(res.ExecComments) > 0 || len(mysql.ExecComments(q)) > 0 {
			t.Fatalf("%q -> %q: session %q, executable comments %q", q, out, res.Session, res.ExecComments)
		}
	})
}
