package sqlshadow_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// fake is a Dialect that returns canned analyses: "t:NAME" references a
// table, "w:NAME" writes one, "f:NAME" / "s:NAME" call an unsafe / safe
// function, "session" and "exec" set those fields, "ddl" makes it KindDDL.
// Renames are reflected in the returned SQL as space-separated words.
type fake struct{ name string }

func (f fake) Name() string { return f.name }

func (f fake) Rewrite(q string, rename sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return f.RewriteFuncs(q, rename, nil)
}

func (f fake) RewriteFuncs(q string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	res := sqlshadow.Result{SQL: q, Kind: sqlshadow.KindRead}
	var out []string
	for _, w := range strings.Fields(q) {
		kind, name, _ := strings.Cut(w, ":")
		schema := ""
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			schema, name = name[:i], name[i+1:]
		}
		switch kind {
		case "t", "w":
			tb := sqlshadow.Table{Schema: schema, Name: name}
			res.Tables = append(res.Tables, sqlshadow.Use{Table: tb, Write: kind == "w"})
			if kind == "w" {
				res.Kind = sqlshadow.KindWrite
			}
			if rename != nil {
				n, err := rename(tb, kind == "w")
				if err != nil {
					return sqlshadow.Result{}, err
				}
				name = n
			}
		case "f", "s":
			fn := sqlshadow.Func{Schema: schema, Name: name, Safe: kind == "s"}
			res.Funcs = append(res.Funcs, fn)
			if funcs != nil {
				n, err := funcs(fn)
				if err != nil {
					return sqlshadow.Result{}, err
				}
				name = n
			}
		case "session":
			res.Session = "SET x"
		case "exec":
			res.ExecComments = append(res.ExecComments, name)
		case "ddl":
			res.Kind = sqlshadow.KindDDL
		}
		if schema != "" {
			name = schema + "." + name
		}
		if kind == "t" || kind == "w" || kind == "f" || kind == "s" || kind == "exec" {
			out = append(out, kind+":"+name)
		} else {
			out = append(out, w)
		}
	}
	res.SQL = strings.Join(out, " ")
	return res, nil
}

func TestMarkedRules(t *testing.T) {
	m := propagation.Mark{Run: "r"}
	rw, err := sqlshadow.New(fake{"postgres"},
		sqlshadow.WithFunctions(map[string]string{"f_bump": "f_bump_twin", "app.g": "g_twin"}),
		sqlshadow.WithReadOnlyFunctions("f_price", "app.f_ro"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"t:orders s:now", "t:orders_shadow s:now", nil},
		{"t:orders f:f_secret", "", shadow.ErrUnsupported},
		{"w:orders f:f_bump", "w:orders_shadow f:f_bump_twin", nil},
		{"t:orders f:app.g", "t:orders_shadow f:app.g_twin", nil},
		{"f:other.g", "", shadow.ErrUnsupported},
		{"f:f_price f:app.f_ro", "f:f_price f:app.f_ro", nil},
		{"f:other.f_ro", "", shadow.ErrUnsupported},
		{"t:orders session", "", shadow.ErrUnsupported},
		{"t:orders exec:x", "", shadow.ErrUnsupported},
		{"t:pg_catalog.pg_class t:pg_stat_activity t:orders", "t:pg_catalog.pg_class t:pg_stat_activity t:orders_shadow", nil},
		{"w:pg_catalog.pg_class", "", shadow.ErrBlocked},
	} {
		got, err := rw.Rewrite(m, c.in)
		if c.err != nil {
			var se *shadow.Error
			if !errors.As(err, &se) || !errors.Is(err, c.err) || se.Mark != m || se.Rule == "" {
				t.Errorf("%s: got %q, %v; want %v", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// The unmarked guard refuses twins (their names hold no shadow affix).
	if err := rw.Guard("f:f_bump_twin"); !errors.Is(err, shadow.ErrShadowFromProduction) {
		t.Errorf("guard on a twin: %v", err)
	}
	if err := rw.Guard("f:f_bump t:orders"); err != nil {
		t.Errorf("guard on production: %v", err)
	}
	if p, ok := rw.ProductionTable("ORDERS_shadow"); !ok || p != "ORDERS" {
		t.Errorf("ProductionTable = %q, %v", p, ok)
	}
}

func TestDatabaseMode(t *testing.T) {
	m := propagation.Mark{Run: "r"}
	rw, err := sqlshadow.New(fake{"mysql"}, sqlshadow.WithDatabase("shop_shadow"))
	if err != nil {
		t.Fatal(err)
	}
	if !rw.DatabaseMode() {
		t.Fatal("not in database mode")
	}
	for _, c := range []struct {
		in  string
		err error
	}{
		{"w:orders s:now", nil},
		{"w:shop_shadow.orders", nil},
		{"t:information_schema.tables", nil},
		{"w:shop.orders", shadow.ErrBlocked},
		{"t:shop.orders", shadow.ErrBlocked},
		{"w:mysql.user", shadow.ErrBlocked},
		{"ddl t:orders", shadow.ErrUnsupported},
		{"f:shop.f", shadow.ErrUnsupported},
		{"t:orders session", shadow.ErrUnsupported},
	} {
		got, err := rw.Rewrite(m, c.in)
		if c.err == nil && (err != nil || got != c.in) {
			t.Errorf("%s: got %q, %v; want it unchanged", c.in, got, err)
		}
		if c.err != nil && !errors.Is(err, c.err) {
			t.Errorf("%s: got %q, %v; want %v", c.in, got, err, c.err)
		}
	}
	if err := rw.Guard("t:orders_shadow"); err != nil {
		t.Errorf("guard is off in database mode: %v", err)
	}
	for _, opts := range [][]sqlshadow.Option{
		{sqlshadow.WithDatabase("x"), sqlshadow.WithTables(map[string]string{"a": "b"})},
		{sqlshadow.WithDatabase("x"), sqlshadow.WithReadThrough("a")},
		{sqlshadow.WithDatabase("")},
		{sqlshadow.WithFunctions(map[string]string{"f": "F"})},
		{sqlshadow.WithReadOnlyFunctions("")},
		{sqlshadow.WithFunctions(map[string]string{"f": "g"}), sqlshadow.WithReadOnlyFunctions("g")},
	} {
		if _, err := sqlshadow.New(fake{"mysql"}, opts...); !errors.Is(err, sqlshadow.ErrConfig) {
			t.Errorf("options %d: %v, want ErrConfig", len(opts), err)
		}
	}
}
