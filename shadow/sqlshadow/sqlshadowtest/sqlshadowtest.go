package sqlshadowtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
		if sqlshadow.IsCatalog(d.Name(), u.Table) {
			if u.Write {
				return "writes system catalog " + u.Table.String()
			}
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
	for _, f := range res.Funcs {
		if !f.Safe {
			return "calls function " + f.String() + ", not known to be side-effect free"
		}
	}
	if res.Session != "" {
		return "changes session state: " + res.Session
	}
	if len(res.ExecComments) > 0 {
		return "holds an executable comment"
	}
	return ""
}

// ServerCase is one hostile statement run as load-test traffic on a real
// server by [RunServer].
type ServerCase struct {
	SQL  string
	Args []any
	// Refused is the sentinel the refusal must wrap; nil means the
	// statement is rewritten and run.
	Refused error
	// MustRun: the rewritten statement must succeed on the server.
	MustRun bool
}

// RunServer runs every case as load-test traffic through rw on ONE
// connection of db (so that session state a statement leaves behind is
// seen by the next), and proves from the server itself that production did
// not change: before and after each case it runs the state queries on that
// connection (production checksums such as "SELECT count(*), sum(id) FROM
// orders", sequence values, and session probes such as "SHOW
// statement_timeout") and compares their results. A refused case must be a
// *shadow.Error wrapping its sentinel. A rewritten case may fail on the
// server (a missing twin, say); it must still change nothing.
func RunServer(t *testing.T, db *sql.DB, rw *sqlshadow.Rewriter, state []string, cases []ServerCase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := propagation.Mark{Run: "sqlshadowtest"}
	snap := func() string {
		var b strings.Builder
		for _, q := range state {
			b.WriteString(q)
			b.WriteString(" => ")
			b.WriteString(row(ctx, conn, q))
			b.WriteString("\n")
		}
		return b.String()
	}
	for _, c := range cases {
		before := snap()
		out, err := rw.Rewrite(m, c.SQL)
		switch {
		case c.Refused != nil:
			var se *shadow.Error
			if !errors.As(err, &se) || !errors.Is(err, c.Refused) {
				t.Errorf("%s\n  got %q, %v\n  want a *shadow.Error wrapping %v", c.SQL, out, err, c.Refused)
			}
		case err != nil:
			t.Errorf("%s: refused: %v", c.SQL, err)
		default:
			rows, qerr := conn.QueryContext(ctx, out, c.Args...)
			if qerr == nil {
				for rows.Next() {
				}
				qerr = rows.Err()
				rows.Close()
			}
			if qerr != nil && c.MustRun {
				t.Errorf("%s -> %s: server error: %v", c.SQL, out, qerr)
			} else if qerr != nil {
				t.Logf("%s -> %s: server error (allowed): %v", c.SQL, out, qerr)
			}
		}
		if after := snap(); after != before {
			t.Errorf("%s changed production or the session:\n before:\n%s after:\n%s", c.SQL, before, after)
		}
	}
}

// row returns the first row of q as text, or the error text.
func row(ctx context.Context, conn *sql.Conn, q string) string {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "error: " + err.Error()
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "error: " + err.Error()
		}
		return "no rows"
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(" | ")
		}
		if bs, ok := v.([]byte); ok {
			v = string(bs)
		}
		fmt.Fprint(&b, v)
	}
	return b.String()
}
