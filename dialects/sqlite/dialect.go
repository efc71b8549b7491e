package sqlite

import (
	"slices"
	"strings"
	"unicode/utf8"

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
	// names[i] is the new name of res.Tables[i]
	names := make([]string, len(res.Tables))
	for i, u := range res.Tables {
		n, err := rename(u.Table, u.Write)
		if err != nil {
			return sqlshadow.Result{}, err
		}
		if n == "" {
			return sqlshadow.Result{}, parseErr("empty new name for table %s", u.Table)
		}
		names[i] = n
	}
	nameOf := func(r tableRef) string {
		for i, u := range res.Tables {
			if u.Table == r.t && u.Write == r.write {
				return names[i]
			}
		}
		return r.t.Name
	}
	// repl[i] is the new text of token i ("" when it is kept)
	repl := make([]string, len(toks))
	for _, r := range p.tables {
		repl[r.tok] = nameOf(r)
	}
	for tok, ti := range quals {
		repl[tok] = nameOf(p.tables[ti])
	}
	funcRenamed := false
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
				funcRenamed = true
			}
		}
	}
	var kw kwMemo
	var b strings.Builder
	b.Grow(len(query) + 16*len(repl))
	last := 0
	for i, t := range toks {
		n := repl[i]
		if n == "" || n == t.val {
			continue
		}
		b.WriteString(query[last:t.start])
		// A space keeps the new name apart from a neighbour it would run
		// into ("a"FROM -> a_shadow FROM).
		if t.start > 0 && joins(query[t.start-1]) {
			b.WriteByte(' ')
		}
		writeIdent(&b, n, t.quote, &kw)
		if t.end < len(query) && joins(query[t.end]) {
			b.WriteByte(' ')
		}
		last = t.end
	}
	b.WriteString(query[last:])
	res.SQL = b.String()
	if !funcRenamed && alphaRenaming(toks, repl, &kw) {
		// Each renamed name token stays one identifier token that is no
		// keyword, and every comparison of names the parser makes (CTE
		// scope, qualifiers, table identity: exact or case-insensitive)
		// comes out the same: res.SQL parses to the same statement with
		// the names replaced, so its analysis is this one with the new
		// names. FuzzRewrite checks it against a fresh parse.
		v := sqlshadow.Result{SQL: res.SQL, Kind: kind}
		if len(res.Tables) > 0 {
			v.Tables = make([]sqlshadow.Use, 0, len(res.Tables))
		}
		for _, r := range p.tables {
			u := sqlshadow.Use{Table: sqlshadow.Table{Schema: r.t.Schema, Name: nameOf(r)}, Write: r.write}
			if !slices.Contains(v.Tables, u) {
				v.Tables = append(v.Tables, u)
			}
		}
		v.Funcs = res.Funcs
		res.Verified = &v
	}
	return res, nil
}

// alphaRenaming reports whether replacing the identifier tokens of repl
// by their new names keeps every relation between names the parser
// tests: no renamed token was a bare keyword (the parser may have weighed
// it as one), two tokens have equal names after the renaming exactly when
// they had before (exactly and in any letter case), and no new name equals
// another name of the statement in any letter case.
func alphaRenaming(toks []token, repl []string, kw *kwMemo) bool {
	// For each identifier token j: its name before and after the renaming
	// and their foldSig.
	type ident struct {
		old, new   string
		osig, nsig uint64
		renamed    bool
	}
	var buf [48]ident
	ids := buf[:0]
	for j := range toks {
		t := &toks[j]
		if t.kind != tIdent {
			continue
		}
		id := ident{old: t.val, new: t.val}
		id.osig = foldSig(t.val)
		id.nsig = id.osig
		if m := repl[j]; m != "" && m != t.val {
			if t.quote == 0 && kw.isKeyword(t.val) {
				return false
			}
			id.new, id.nsig, id.renamed = m, foldSig(m), true
		}
		ids = append(ids, id)
	}
	for i := range ids {
		a := &ids[i]
		if !a.renamed {
			continue
		}
		for j := range ids {
			b := &ids[j]
			if j == i {
				continue
			}
			// Two ASCII names whose signatures differ are neither equal
			// nor equal in any letter case: when that holds both before
			// and after the renaming, the pair keeps its relations.
			if a.osig != b.osig && a.nsig != b.nsig && a.osig != 0 && b.osig != 0 && a.nsig != 0 && b.nsig != 0 {
				continue
			}
			if a.old == b.old || a.new == b.new {
				// equal names are equal in any case too: equal before
				// must mean equal after, and the other way round
				if a.old != b.old || a.new != b.new {
					return false
				}
				continue
			}
			if strings.EqualFold(a.old, b.old) != strings.EqualFold(a.new, b.new) {
				return false
			}
		}
	}
	return true
}

// foldSig is a signature of an ASCII name that two names equal in any
// letter case share: its length and its first and last bytes with the
// ASCII case bit set. It is 0 for a non-ASCII name, whose case folding
// (the Kelvin sign folds to k) only strings.EqualFold decides.
func foldSig(s string) uint64 {
	if s == "" {
		return 0
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return 0
		}
	}
	return 1<<63 | uint64(len(s))<<16 | uint64(s[0]|0x20)<<8 | uint64(s[len(s)-1]|0x20)
}

// kwMemo remembers isKeyword for the few distinct names of one statement
// (each renamed name is tested where it is written and again by
// alphaRenaming). The zero value is ready to use.
type kwMemo struct {
	n    int
	name [8]string
	kw   [8]bool
}

func (m *kwMemo) isKeyword(s string) bool {
	if m == nil {
		return isKeyword(s)
	}
	for i := 0; i < m.n; i++ {
		if m.name[i] == s {
			return m.kw[i]
		}
	}
	k := isKeyword(s)
	if m.n < len(m.name) {
		m.name[m.n], m.kw[m.n] = s, k
		m.n++
	}
	return k
}

// isKeyword reports whether s, upper-cased as token.kw does it, is a
// keyword; an ASCII name is upper-cased on the stack.
func isKeyword(s string) bool {
	const longest = len("CURRENT_TIMESTAMP")
	if len(s) > longest {
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				return keywords[strings.ToUpper(s)]
			}
		}
		return false
	}
	var b [longest]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return keywords[strings.ToUpper(s)]
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return keywords[string(b[:len(s)])]
}

// joins reports whether a token written next to c could merge with the
// token c ends or starts: c continues a name or a number, or closes or
// opens a quoted name or string.
func joins(c byte) bool {
	return c == '_' || c == '$' || c == '"' || c == '\'' || c == '`' || c == '[' || c == ']' || c >= 0x80 ||
		'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// funcOf is the function a call's name token names.
func funcOf(t token) sqlshadow.Func {
	f := sqlshadow.Func{Name: t.val}
	_, f.Safe = safeFuncs[strings.ToLower(t.val)]
	return f
}

// writeIdent writes name as an identifier, in the quote style of the token
// it replaces when possible.
func writeIdent(b *strings.Builder, name string, quote byte, kw *kwMemo) {
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
		if bareOK(name, kw) {
			b.WriteString(name)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(strings.ReplaceAll(name, `"`, `""`))
	b.WriteByte('"')
}

func bareOK(name string, kw *kwMemo) bool {
	if name == "" || !isIdentStart(name[0]) || kw.isKeyword(name) {
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
