package sqlite

import (
	"strings"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Dialect is the SQLite [sqlshadow.Dialect]. The zero value is ready to use
// and safe for concurrent use.
type Dialect struct{}

// New returns the SQLite dialect.
func New() Dialect { return Dialect{} }

var _ sqlshadow.Dialect = Dialect{}

// Name returns "sqlite".
func (Dialect) Name() string { return "sqlite" }

// Rewrite implements [sqlshadow.Dialect].
func (d Dialect) Rewrite(query string, rename sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return d.RewriteFuncs(query, rename, nil)
}

// RewriteFuncs implements [sqlshadow.FuncDialect]: Rewrite that also
// renames function calls with funcs.
func (Dialect) RewriteFuncs(query string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	toks, err := lex(query)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if toks[0].kind == tEOF || toks[0].kind == tSemi {
		return sqlshadow.Result{}, parseErr("empty statement")
	}
	p := &parser{s: query, toks: toks}
	kind, err := p.statement()
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if p.peek().kind == tSemi {
		p.next()
	}
	if p.peek().kind != tEOF {
		return sqlshadow.Result{}, p.unexpected("expected end of statement (one statement only)")
	}
	quals, err := p.resolve()
	if err != nil {
		return sqlshadow.Result{}, err
	}
	res := sqlshadow.Result{SQL: query, Kind: kind}
	type key struct {
		t     sqlshadow.Table
		write bool
	}
	seen := make(map[key]bool, len(p.tables))
	for _, r := range p.tables {
		k := key{r.t, r.write}
		if !seen[k] {
			seen[k] = true
			res.Tables = append(res.Tables, sqlshadow.Use{Table: r.t, Write: r.write})
		}
	}
	fseen := map[sqlshadow.Func]bool{}
	for _, ft := range p.funcs {
		f := funcOf(toks[ft])
		if !fseen[f] {
			fseen[f] = true
			res.Funcs = append(res.Funcs, f)
		}
	}
	if (rename == nil && funcs == nil) || (len(p.tables) == 0 && len(p.funcs) == 0) || kind == sqlshadow.KindDDL {
		// DDL is never rewritten: the caller refuses it for marked traffic.
		return res, nil
	}
	if rename == nil {
		rename = func(t sqlshadow.Table, _ bool) (string, error) { return t.Name, nil }
	}
	names := make(map[key]string, len(res.Tables))
	for _, u := range res.Tables {
		n, err := rename(u.Table, u.Write)
		if err != nil {
			return sqlshadow.Result{}, err
		}
		if n == "" {
			return sqlshadow.Result{}, parseErr("empty new name for table %s", u.Table)
		}
		names[key{u.Table, u.Write}] = n
	}
	// new text for each renamed token, in token order
	repl := make(map[int]string, len(p.tables)+len(quals))
	for _, r := range p.tables {
		repl[r.tok] = names[key{r.t, r.write}]
	}
	for tok, ti := range quals {
		r := p.tables[ti]
		repl[tok] = names[key{r.t, r.write}]
	}
	if funcs != nil {
		for _, ft := range p.funcs {
			f := funcOf(toks[ft])
			n, err := funcs(f)
			if err != nil {
				return sqlshadow.Result{}, err
			}
			if n == "" {
				return sqlshadow.Result{}, parseErr("empty new name for function %s", f)
			}
			if n != f.Name {
				repl[ft] = n
			}
		}
	}
	var b strings.Builder
	b.Grow(len(query) + 16*len(repl))
	last := 0
	for i, t := range toks {
		n, ok := repl[i]
		if !ok || n == t.val {
			continue
		}
		b.WriteString(query[last:t.start])
		writeIdent(&b, n, t.quote)
		last = t.end
	}
	b.WriteString(query[last:])
	res.SQL = b.String()
	return res, nil
}

// funcOf is the function a call's name token names.
func funcOf(t token) sqlshadow.Func {
	f := sqlshadow.Func{Name: t.val}
	_, f.Safe = safeFuncs[strings.ToLower(t.val)]
	return f
}

// writeIdent writes name as an identifier, in the quote style of the token
// it replaces when possible.
func writeIdent(b *strings.Builder, name string, quote byte) {
	switch quote {
	case '`':
		b.WriteByte('`')
		b.WriteString(strings.ReplaceAll(name, "`", "``"))
		b.WriteByte('`')
		return
	case '[':
		if !strings.Contains(name, "]") {
			b.WriteByte('[')
			b.WriteString(name)
			b.WriteByte(']')
			return
		}
	case 0:
		if bareOK(name) {
			b.WriteString(name)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(name, `"`, `""`))
	b.WriteByte('"')
}

func bareOK(name string) bool {
	if name == "" || !isIdentStart(name[0]) || keywords[strings.ToUpper(name)] {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isIdentChar(c) || c >= 0x80 {
			return false
		}
	}
	return true
}

// keywords are SQLite's keywords (https://sqlite.org/lang_keywords.html):
// a new name equal to one of them is written quoted.
var keywords = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH
	AUTOINCREMENT BEFORE BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT
	CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT
	DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE
	EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP
	GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO
	IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL
	NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE
	RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK
	ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION
	UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT`) {
		m[k] = true
	}
	return m
}()
