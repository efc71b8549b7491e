package sqlshadowtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Case is one statement run as load-test traffic.
type Case struct {
	// SQL is the statement as the application sends it.
	SQL string
	// Refused is the sentinel the refusal must wrap (shadow.ErrBlocked,
	// shadow.ErrUnsupported, shadow.ErrNoShadowTarget); nil means the
	// statement must be rewritten.
	Refused error
	// Want, when not empty, is the exact rewritten statement.
	Want string
}

// Run checks every case with a [sqlshadow.Rewriter] on d that uses the
// default naming ([shadow.DefaultTable], suffix "_shadow") and the given
// read-through tables. A case that is rewritten must re-parse as a read, a
// write or a table-free statement (never KindDDL) whose written tables are
// all shadow tables and whose read tables are shadow or read-through ones;
// the unmarked guard must then refuse the rewritten text whenever it names
// a shadow table.
func Run(t *testing.T, d sqlshadow.Dialect, readThrough []string, cases []Case) {
	t.Helper()
	rw, err := sqlshadow.New(d, sqlshadow.WithReadThrough(readThrough...))
	if err != nil {
		t.Fatal(err)
	}
	m := propagation.Mark{Run: "sqlshadowtest"}
	for _, c := range cases {
		out, err := rw.Rewrite(m, c.SQL)
		if c.Refused != nil {
			var se *shadow.Error
			if !errors.As(err, &se) || !errors.Is(err, c.Refused) {
				t.Errorf("%s\n  got %q, %v\n  want a *shadow.Error wrapping %v", c.SQL, out, err, c.Refused)
				continue
			}
			if se.Store != d.Name() || se.Rule == "" || se.Mark != m {
				t.Errorf("%s: refusal lacks store, rule or mark: %+v", c.SQL, se)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: refused: %v", c.SQL, err)
			continue
		}
		if c.Want != "" && out != c.Want {
			t.Errorf("%s\n  got  %s\n  want %s", c.SQL, out, c.Want)
		}
		if msg := Leak(d, out, readThrough...); msg != "" {
			t.Errorf("%s -> %s: %s", c.SQL, out, msg)
		}
		res, _ := d.Rewrite(out, nil)
		names := false
		for _, u := range res.Tables {
			names = names || rw.IsShadow(u.Table)
		}
		if gerr := rw.Guard(out); names && !errors.Is(gerr, shadow.ErrShadowFromProduction) {
			t.Errorf("%s: unmarked guard let the shadow statement through: %v", out, gerr)
		}
	}
}

// Leak analyses a statement about to run for load-test traffic and
// describes how it could touch production, or returns "" when it cannot:
// it must parse, must not be KindDDL, must write only shadow tables
// ([shadow.DefaultTable] naming) and read only shadow or read-through ones.
func Leak(d sqlshadow.Dialect, query string, readThrough ...string) string {
	res, err := d.Rewrite(query, nil)
	if err != nil {
		return "does not parse: " + err.Error()
	}
	if res.Kind == sqlshadow.KindDDL {
		return "is " + res.Kind.String()
	}
	for _, u := range res.Tables {
		if shadow.DefaultTable.IsShadow(strings.ToLower(u.Table.Name)) {
			continue
		}
		read := false
		for _, n := range readThrough {
			read = read || strings.EqualFold(n, u.Table.Name) || strings.EqualFold(n, u.Table.String())
		}
		switch {
		case read && u.Write:
			return "writes read-through table " + u.Table.String()
		case !read:
			return "touches production table " + u.Table.String()
		}
	}
	return ""
}
