package postgres

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shadowlane/shadowlane/internal/ctescope"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// Dialect rewrites PostgreSQL statements with the PostgreSQL server's own
// parser (libpg_query). It is stateless and safe for concurrent use.
type Dialect struct{}

var _ sqlshadow.Dialect = Dialect{}

// New returns the PostgreSQL dialect.
func New() Dialect { return Dialect{} }

// Name returns "postgres".
func (Dialect) Name() string { return "postgres" }

func parseErr(format string, args ...any) error {
	return fmt.Errorf("%w: postgres: %s", sqlshadow.ErrParse, fmt.Sprintf(format, args...))
}

func parseOne(query string) (*pg.Node, error) {
	tree, err := pg.Parse(query)
	if err != nil {
		return nil, parseErr("%v", err)
	}
	if len(tree.Stmts) != 1 || tree.Stmts[0].Stmt == nil {
		return nil, parseErr("want exactly one statement, got %d", len(tree.Stmts))
	}
	return tree.Stmts[0].Stmt, nil
}

// Rewrite implements sqlshadow.Dialect. See the package documentation for
// what is renamed and how statements are classified.
func (d Dialect) Rewrite(query string, rename sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return d.RewriteFuncs(query, rename, nil)
}

// RewriteFuncs implements sqlshadow.FuncDialect: Rewrite that also renames
// function calls with funcs.
func (Dialect) RewriteFuncs(query string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	stmt, err := parseOne(query)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	a, res := analyseResult(query, stmt)
	if res.Kind == sqlshadow.KindDDL {
		// Never rewritten: the caller refuses DDL for marked traffic.
		return res, nil
	}
	if rename == nil && funcs == nil {
		return res, nil
	}
	if rename == nil {
		rename = func(t sqlshadow.Table, _ bool) (string, error) { return t.Name, nil }
	}
	for _, s := range a.seqs {
		if s.bad != "" {
			return sqlshadow.Result{}, parseErr("%s", s.bad)
		}
	}
	if len(a.base()) == 0 && len(a.seqs) == 0 && len(a.funcs) == 0 {
		// Unchanged: this analysis is what a re-parse would give.
		v := res
		res.Verified = &v
		return res, nil
	}
	out, want, alpha, err := a.rewrite(query, rename, funcs)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if alpha {
		// Every edit put an identifier token in place of an identifier
		// token (a string constant in place of a string constant), at
		// the locations the parser reported, and no new name can be
		// taken for another (a.rewrite): out parses to this tree with the
		// names replaced, so its analysis is this one with the names
		// replaced, and no second parse is needed. FuzzRewrite checks it
		// against a fresh parse.
		res.SQL = out
		res.Verified = &sqlshadow.Result{SQL: out, Kind: res.Kind, Tables: a.renamedUses(), Funcs: res.Funcs, Session: res.Session}
		return res, nil
	}
	verified, err := verify(out, want)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	res.SQL = out
	// verify parsed out: the caller checks its analysis instead of
	// parsing out once more.
	res.Verified = verified
	return res, nil
}

// analyseResult analyses a parsed statement: the Result is what
// Rewrite(query, nil) returns.
func analyseResult(query string, stmt *pg.Node) (*analysis, sqlshadow.Result) {
	a := analyse(stmt)
	kind := a.kind(stmt)
	if kind == sqlshadow.KindDDL {
		return a, sqlshadow.Result{SQL: query, Kind: kind, Tables: a.uses(true), Funcs: a.funcList()}
	}
	return a, sqlshadow.Result{SQL: query, Kind: kind, Tables: a.uses(false), Funcs: a.funcList(), Session: a.session}
}

// verify re-parses the rewritten statement and checks that it references
// exactly the renamed tables: a rewrite that would leave a production table
// behind, or that does not re-parse, is refused. It returns the analysis
// of out: exactly what Rewrite(out, nil) returns.
func verify(out string, want map[sqlshadow.Table]int) (*sqlshadow.Result, error) {
	stmt, err := parseOne(out)
	if err != nil {
		return nil, fmt.Errorf("rewritten statement does not re-parse: %w", err)
	}
	got := map[sqlshadow.Table]int{}
	b, res := analyseResult(out, stmt)
	for _, r := range b.base() {
		got[r.table]++
	}
	for _, s := range b.seqs {
		got[s.table]++
	}
	ok := len(got) == len(want)
	for k, n := range want {
		ok = ok && got[k] == n
	}
	if !ok {
		return nil, parseErr("rewrite verification failed: tables %v, want %v", got, want)
	}
	return &res, nil
}

// ref is one RangeVar of the statement.
type ref struct {
	rv    *pg.RangeVar
	table sqlshadow.Table // schema (catalog.schema when both) and relation name
	parts int             // qualifier parts written before the name: 0, 1 or 2
	cte   bool
	write bool
	name  string // new name
}

type colRef struct {
	cr     *pg.ColumnRef
	schema string // "" when the qualifier has no schema part
	table  string // qualifier naming the table
	index  int    // position of the table qualifier in cr.Fields
}

// funcRef is one function call.
type funcRef struct {
	loc   int
	parts int // qualifier parts before the name
	f     sqlshadow.Func
}

// seqRef is a relation named in a string literal: the sequence argument of
// nextval/setval/currval or a 'name'::regclass cast.
type seqRef struct {
	loc   int // the string literal
	sval  string
	table sqlshadow.Table
	write bool
	bad   string // why the literal cannot be renamed ("" when it can)
	name  string // new name
}

type analysis struct {
	funcs   []funcRef
	seqs    []seqRef
	used    map[*pg.A_Const]bool // literals taken as sequence arguments
	session string
	refs    []*ref
	cols    []colRef
	locked  []*pg.RangeVar // FOR UPDATE OF entries
	aliases map[string]bool
	scopes  ctescope.Scopes
	dml     bool // INSERT/UPDATE/DELETE/MERGE anywhere (data-modifying CTEs too)
	locks   bool // FOR UPDATE/SHARE anywhere
	// cteNames are the names of every CTE of the statement.
	cteNames []string
}

func analyse(stmt *pg.Node) *analysis {
	a := &analysis{aliases: map[string]bool{}, used: map[*pg.A_Const]bool{}}
	if v := stmt.GetVariableSetStmt(); v != nil {
		a.session = sessionChange(v)
	}
	a.walk(stmt.ProtoReflect(), false)
	sort.SliceStable(a.refs, func(i, j int) bool { return a.refs[i].rv.Location < a.refs[j].rv.Location })
	if a.locks {
		for _, r := range a.refs {
			r.write = true
		}
	}
	return a
}

func withClauseOf(m any) *pg.WithClause {
	switch s := m.(type) {
	case *pg.SelectStmt:
		return s.WithClause
	case *pg.InsertStmt:
		return s.WithClause
	case *pg.UpdateStmt:
		return s.WithClause
	case *pg.DeleteStmt:
		return s.WithClause
	case *pg.MergeStmt:
		return s.WithClause
	}
	return nil
}

// walk visits every message of the tree. write is true while inside the
// target relation of a data-modifying statement.
func (a *analysis) walk(m protoreflect.Message, write bool) {
	msg := m.Interface()
	var target *pg.RangeVar
	switch x := msg.(type) {
	case *pg.RangeVar:
		a.addRef(x, write)
		if x.Alias != nil {
			a.aliases[x.Alias.Aliasname] = true
		}
		return
	case *pg.Alias:
		a.aliases[x.Aliasname] = true
		return
	case *pg.ColumnRef:
		a.addCol(x)
		return
	case *pg.LockingClause:
		// FOR UPDATE OF names FROM items (aliases or tables), not tables.
		for _, n := range x.LockedRels {
			if rv := n.GetRangeVar(); rv != nil {
				a.locked = append(a.locked, rv)
			}
		}
		return
	case *pg.InsertStmt:
		a.dml, target = true, x.Relation
	case *pg.UpdateStmt:
		a.dml, target = true, x.Relation
	case *pg.DeleteStmt:
		a.dml, target = true, x.Relation
	case *pg.MergeStmt:
		a.dml, target = true, x.Relation
	case *pg.SelectStmt:
		if len(x.LockingClause) > 0 {
			a.locks = true
		}
	case *pg.FuncCall:
		a.addFunc(x)
	case *pg.TypeCast:
		if c := regclassLiteral(x); c != nil && !a.used[c] {
			a.addSeq(c, false)
		}
	case *pg.A_Expr:
		// OPERATOR(schema.op): an operator outside pg_catalog runs a
		// function shadowlane cannot see.
		if len(x.Name) == 2 {
			sc, op := x.Name[0].GetString_(), x.Name[1].GetString_()
			if sc != nil && op != nil && sc.Sval != "pg_catalog" {
				a.funcs = append(a.funcs, funcRef{loc: -1, f: sqlshadow.Func{Schema: sc.Sval, Name: "OPERATOR(" + op.Sval + ")"}})
			}
		}
	}
	var with *pg.WithClause
	if w := withClauseOf(msg); w != nil {
		with = w
		for _, c := range w.Ctes {
			if cte := c.GetCommonTableExpr(); cte != nil {
				a.cteNames = append(a.cteNames, cte.Ctename)
			}
		}
		scope := a.scopes.Push()
		defer a.scopes.Pop()
		if w.Recursive {
			for _, c := range w.Ctes {
				if cte := c.GetCommonTableExpr(); cte != nil {
					scope[cte.Ctename] = true
				}
			}
		}
		for _, c := range w.Ctes {
			cte := c.GetCommonTableExpr()
			if cte == nil {
				a.walk(c.ProtoReflect(), false)
				continue
			}
			a.walk(cte.ProtoReflect(), false)
			scope[cte.Ctename] = true // visible to later CTEs and the body
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				a.walk(l.Get(i).Message(), write)
			}
			return true
		}
		if fd.IsMap() {
			return true
		}
		sub := v.Message()
		if with != nil && sub.Interface() == with {
			return true // done above
		}
		a.walk(sub, write || (target != nil && sub.Interface() == target))
		return true
	})
}

func (a *analysis) addRef(rv *pg.RangeVar, write bool) {
	r := &ref{rv: rv, write: write}
	r.table.Name = rv.Relname
	switch {
	case rv.Catalogname != "":
		r.table.Schema = rv.Catalogname + "." + rv.Schemaname
		r.parts = 2
	case rv.Schemaname != "":
		r.table.Schema = rv.Schemaname
		r.parts = 1
	}
	r.cte = r.parts == 0 && a.scopes.Has(rv.Relname)
	a.refs = append(a.refs, r)
}

// seqFuncs are the sequence functions whose first argument names a
// sequence, and whether they advance it.
var seqFuncs = map[string]bool{"nextval": true, "setval": true, "currval": false}

func (a *analysis) addFunc(fc *pg.FuncCall) {
	var parts []string
	for _, n := range fc.Funcname {
		s := n.GetString_()
		if s == nil {
			a.funcs = append(a.funcs, funcRef{loc: -1, f: sqlshadow.Func{Name: "?"}})
			return
		}
		parts = append(parts, s.Sval)
	}
	if len(parts) == 0 {
		return
	}
	f := sqlshadow.Func{Name: parts[len(parts)-1]}
	if len(parts) > 1 {
		f.Schema = strings.Join(parts[:len(parts)-1], ".")
	}
	builtin := f.Schema == "" || f.Schema == "pg_catalog"
	if write, ok := seqFuncs[f.Name]; ok && builtin && len(fc.Args) > 0 {
		c := fc.Args[0].GetAConst()
		if tc := fc.Args[0].GetTypeCast(); tc != nil {
			c = regclassLiteral(tc)
		}
		if c != nil && c.GetSval() != nil {
			a.used[c] = true
			a.addSeq(c, write)
			return // the sequence is renamed like a table; the call itself is safe then
		}
	}
	if builtin {
		_, f.Safe = safeFuncs[f.Name]
		if f.Name == "set_config" {
			// set_config(name, value, is_local): local settings end with
			// the transaction, like SET LOCAL.
			f.Safe = len(fc.Args) == 3 && isTrue(fc.Args[2])
			if !f.Safe {
				a.session = "set_config(..., false)"
			}
		}
	}
	a.funcs = append(a.funcs, funcRef{loc: int(fc.Location), parts: len(parts) - 1, f: f})
}

func isTrue(n *pg.Node) bool {
	c := n.GetAConst()
	if tc := n.GetTypeCast(); tc != nil {
		c = tc.Arg.GetAConst()
	}
	if c == nil {
		return false
	}
	if b := c.GetBoolval(); b != nil {
		return b.Boolval
	}
	if s := c.GetSval(); s != nil {
		switch strings.ToLower(s.Sval) {
		case "t", "true", "on", "yes", "y", "1":
			return true
		}
	}
	return false
}

// regclassLiteral returns the string literal of a 'name'::regclass cast.
func regclassLiteral(tc *pg.TypeCast) *pg.A_Const {
	if tc == nil || tc.TypeName == nil || len(tc.TypeName.Names) == 0 || tc.Arg == nil {
		return nil
	}
	last := tc.TypeName.Names[len(tc.TypeName.Names)-1].GetString_()
	if last == nil || last.Sval != "regclass" {
		return nil
	}
	if c := tc.Arg.GetAConst(); c != nil && c.GetSval() != nil {
		return c
	}
	return nil
}

func (a *analysis) addSeq(c *pg.A_Const, write bool) {
	a.used[c] = true
	sv := c.GetSval().Sval
	s := seqRef{loc: int(c.Location), sval: sv, write: write}
	t, ok := parseRelName(sv)
	if !ok {
		s.bad = fmt.Sprintf("relation name %q in a string cannot be renamed safely", sv)
	}
	s.table = t
	a.seqs = append(a.seqs, s)
}

// parseRelName reads a relation name as regclass input does: dot-separated
// parts, unquoted parts folded to lower case, "quoted" parts as written.
func parseRelName(s string) (sqlshadow.Table, bool) {
	var parts []string
	for len(s) > 0 {
		var p string
		if s[0] == '"' {
			i := 1
			var b strings.Builder
			for ; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return sqlshadow.Table{}, false
			}
			p, s = b.String(), s[i+1:]
		} else {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				i = len(s)
			}
			p, s = foldLower(s[:i]), s[i:]
			if !plain(p) {
				return sqlshadow.Table{}, false
			}
		}
		if p == "" {
			return sqlshadow.Table{}, false
		}
		parts = append(parts, p)
		if len(s) > 0 {
			if s[0] != '.' || len(s) == 1 {
				return sqlshadow.Table{}, false
			}
			s = s[1:]
		}
	}
	switch len(parts) {
	case 1:
		return sqlshadow.Table{Name: parts[0]}, true
	case 2:
		return sqlshadow.Table{Schema: parts[0], Name: parts[1]}, true
	}
	return sqlshadow.Table{}, false
}

// funcList lists the functions called, deduplicated, in order.
func (a *analysis) funcList() []sqlshadow.Func {
	var out []sqlshadow.Func
	seen := map[sqlshadow.Func]bool{}
	for _, f := range a.funcs {
		if !seen[f.f] {
			seen[f.f] = true
			out = append(out, f.f)
		}
	}
	return out
}

func (a *analysis) addCol(cr *pg.ColumnRef) {
	n := len(cr.Fields)
	if n < 2 {
		return
	}
	c := colRef{cr: cr, index: n - 2}
	s := cr.Fields[n-2].GetString_()
	if s == nil {
		return
	}
	c.table = s.Sval
	if n >= 3 {
		if sc := cr.Fields[n-3].GetString_(); sc != nil {
			c.schema = sc.Sval
		}
	}
	a.cols = append(a.cols, c)
}

func (a *analysis) base() []*ref {
	var out []*ref
	for _, r := range a.refs {
		if !r.cte {
			out = append(out, r)
		}
	}
	return out
}

// kind classifies the statement. Anything not known to be a plain read, a
// plain write or table-free is KindDDL, so that marked traffic is refused
// rather than passed through unexamined (CALL, DO, COPY, PREPARE/EXECUTE,
// SELECT INTO, GRANT, EXPLAIN, ...).
func (a *analysis) kind(stmt *pg.Node) sqlshadow.Kind {
	k := classify(stmt)
	if k == sqlshadow.KindRead && (a.dml || a.locks) {
		return sqlshadow.KindWrite
	}
	if k == sqlshadow.KindWrite && !a.dml {
		// LOCK TABLE and the like: every table counts as written.
		for _, r := range a.refs {
			r.write = true
		}
	}
	if k == sqlshadow.KindOther && len(a.refs) > 0 {
		return sqlshadow.KindRead
	}
	return k
}

func classify(n *pg.Node) sqlshadow.Kind {
	switch s := n.Node.(type) {
	case *pg.Node_SelectStmt:
		if hasInto(s.SelectStmt) {
			return sqlshadow.KindDDL
		}
		return sqlshadow.KindRead
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt, *pg.Node_LockStmt:
		return sqlshadow.KindWrite
	case *pg.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs its statement, whichever of its two forms
		// (EXPLAIN ANALYZE x, EXPLAIN (ANALYZE) x) or option spelling is
		// used; refusing every EXPLAIN for load-test traffic is simpler
		// than proving an option list harmless.
		return sqlshadow.KindDDL
	case *pg.Node_TransactionStmt, *pg.Node_VariableSetStmt, *pg.Node_VariableShowStmt:
		return sqlshadow.KindOther
	}
	return sqlshadow.KindDDL
}

// sessionChange describes how a SET/RESET changes the state of its
// pooled connection beyond the statement ("" when it does not): production
// statements would inherit it after a load-test statement returned the
// connection. SET LOCAL and SET TRANSACTION end with their transaction.
func sessionChange(v *pg.VariableSetStmt) string {
	if v.IsLocal {
		return ""
	}
	if v.Kind == pg.VariableSetKind_VAR_SET_MULTI && (v.Name == "TRANSACTION" || v.Name == "TRANSACTION SNAPSHOT") {
		return ""
	}
	switch v.Kind {
	case pg.VariableSetKind_VAR_RESET:
		return "RESET " + v.Name
	case pg.VariableSetKind_VAR_RESET_ALL:
		return "RESET ALL"
	}
	return "SET " + v.Name
}

func hasInto(s *pg.SelectStmt) bool {
	if s == nil {
		return false
	}
	return s.IntoClause != nil || hasInto(s.Larg) || hasInto(s.Rarg)
}

// renamedUses is uses(false) of the rewritten statement: the tables with
// the new names given by rewrite.
func (a *analysis) renamedUses() []sqlshadow.Use {
	var out []sqlshadow.Use
	seen := map[sqlshadow.Use]bool{}
	for _, r := range a.base() {
		u := sqlshadow.Use{Table: sqlshadow.Table{Schema: r.table.Schema, Name: r.name}, Write: r.write}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, s := range a.seqs {
		u := sqlshadow.Use{Table: sqlshadow.Table{Schema: s.table.Schema, Name: s.name}, Write: s.write}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// uses lists the real tables in order of appearance, deduplicated by
// (table, write).
func (a *analysis) uses(allWrite bool) []sqlshadow.Use {
	var out []sqlshadow.Use
	seen := map[sqlshadow.Use]bool{}
	for _, r := range a.base() {
		u := sqlshadow.Use{Table: r.table, Write: r.write || allWrite}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	for _, s := range a.seqs {
		u := sqlshadow.Use{Table: s.table, Write: s.write || allWrite}
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

type edit struct {
	start, end int
	text       string
}

type renameKey struct {
	t     sqlshadow.Table
	write bool
}

// rewrite renames tables and column qualifiers by replacing the name tokens
// at the byte offsets the parser reports; everything else in the text
// (comments, placeholders, spacing, quoting) is kept as written.
//
// alpha reports that the edits are an alpha-renaming the analysis cannot
// tell from the original: every renamed name token was an identifier (not
// a keyword used as a name) and is replaced by an identifier, sequence
// literals by string literals, no function is renamed, and no new name is
// the name of a CTE of the statement (a reference would become a CTE
// reference). The analysis of the output is then the analysis of query
// with the new names (renamedUses).
func (a *analysis) rewrite(query string, fn sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (out string, want map[sqlshadow.Table]int, alpha bool, err error) {
	alpha = true
	nf := &nameFinder{query: query}
	quoted := map[string]string{}
	quote := func(name string) string {
		if len(name) > 63 {
			// PostgreSQL truncates names to NAMEDATALEN-1 bytes: the
			// output names another table than name; the re-parse decides
			alpha = false
		}
		q, ok := quoted[name]
		if !ok {
			q = quoteIdent(name)
			quoted[name] = q
		}
		return q
	}
	// renamed asks fn once per table and access.
	done := map[renameKey]string{}
	renamed := func(t sqlshadow.Table, write bool) (string, error) {
		k := renameKey{t, write}
		if name, ok := done[k]; ok {
			return name, nil
		}
		name, err := fn(t, write)
		if err != nil {
			return "", err
		}
		if name == "" {
			return "", fmt.Errorf("postgres: rename of %s returned an empty name", t)
		}
		done[k] = name
		return name, nil
	}
	want = map[sqlshadow.Table]int{}
	var edits []edit
	for _, r := range a.base() {
		name, err := renamed(r.table, r.write)
		if err != nil {
			return "", nil, false, err
		}
		r.name = name
		want[sqlshadow.Table{Schema: r.table.Schema, Name: name}]++
		if name == r.rv.Relname {
			continue
		}
		start, end, ident, err := nf.name(int(r.rv.Location), r.parts, r.rv.Relname)
		if err != nil {
			return "", nil, false, err
		}
		if !ident || slices.Contains(a.cteNames, name) {
			alpha = false
		}
		edits = append(edits, edit{start, end, quote(name)})
	}
	for si, s := range a.seqs {
		name, err := renamed(s.table, s.write)
		if err != nil {
			return "", nil, false, err
		}
		want[sqlshadow.Table{Schema: s.table.Schema, Name: name}]++
		a.seqs[si].name = name
		if name == s.table.Name {
			continue
		}
		toks, err := nf.tokens()
		if err != nil {
			return "", nil, false, err
		}
		i := sort.Search(len(toks), func(i int) bool { return int(toks[i].Start) >= s.loc })
		if i == len(toks) || int(toks[i].Start) != s.loc || toks[i].Token != pg.Token_SCONST ||
			query[toks[i].Start] != '\'' || strings.ReplaceAll(query[toks[i].Start+1:toks[i].End-1], "''", "'") != s.sval {
			return "", nil, false, parseErr("relation name literal at offset %d cannot be renamed safely", s.loc)
		}
		if len(name) > 63 {
			alpha = false // truncated by PostgreSQL, as in quote
		}
		lit := name
		if !plain(name) {
			lit = quoteIdent(name)
		}
		if s.table.Schema != "" {
			lit = quoteIdent(s.table.Schema) + "." + quoteIdent(name)
		}
		edits = append(edits, edit{int(toks[i].Start), int(toks[i].End), "'" + strings.ReplaceAll(lit, "'", "''") + "'"})
	}
	if funcs != nil {
		for i := range a.funcs {
			f := &a.funcs[i]
			name, err := funcs(f.f)
			if err != nil {
				return "", nil, false, err
			}
			if name == f.f.Name {
				continue
			}
			alpha = false
			if f.loc < 0 || name == "" {
				return "", nil, false, parseErr("function %s cannot be renamed", f.f)
			}
			start, end, _, err := nf.name(f.loc, f.parts, f.f.Name)
			if err != nil {
				return "", nil, false, err
			}
			edits = append(edits, edit{start, end, quote(name)})
		}
	}
	// requalify renames the qualifier table (of a column, or of a FOR
	// UPDATE OF entry) at loc, written with parts qualifying parts, to the
	// new name of the table it names.
	requalify := func(schema, table string, loc int32, parts int) error {
		name, err := a.qualifier(schema, table)
		if err != nil {
			return err
		}
		if name == "" || name == table {
			return nil // not renamed
		}
		start, end, ident, err := nf.name(int(loc), parts, table)
		if err != nil {
			return err
		}
		if !ident {
			alpha = false
		}
		edits = append(edits, edit{start, end, quote(name)})
		return nil
	}
	for _, c := range a.cols {
		if c.schema == "" && a.aliases[c.table] {
			continue
		}
		if err := requalify(c.schema, c.table, c.cr.Location, c.index); err != nil {
			return "", nil, false, err
		}
	}
	for _, rv := range a.locked {
		if rv.Catalogname != "" || rv.Schemaname == "" && a.aliases[rv.Relname] {
			continue
		}
		parts := 0
		if rv.Schemaname != "" {
			parts = 1
		}
		if err := requalify(rv.Schemaname, rv.Relname, rv.Location, parts); err != nil {
			return "", nil, false, err
		}
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var sb strings.Builder
	sb.Grow(len(query) + 16*len(edits))
	last := 0
	for _, e := range edits {
		if e.start < last {
			return "", nil, false, parseErr("overlapping rename at offset %d", e.start)
		}
		sb.WriteString(query[last:e.start])
		// A space keeps the new token apart from a neighbour it would
		// run into: FROM"a" -> FROM a_shadow, "x""a" stays two names.
		if e.start > 0 && joins(query[e.start-1]) {
			sb.WriteByte(' ')
		}
		sb.WriteString(e.text)
		if e.end < len(query) && joins(query[e.end]) {
			sb.WriteByte(' ')
		}
		last = e.end
	}
	sb.WriteString(query[last:])
	return sb.String(), want, alpha, nil
}

// joins reports whether a token written next to c could merge with the
// token c ends or starts: c continues a name, a number or a parameter, or
// closes or opens a quoted name or string.
func joins(c byte) bool {
	return c == '_' || c == '$' || c == '"' || c == '\'' || c >= 0x80 ||
		'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// qualifier returns the new name for the column qualifier [schema.]table,
// or "" when it names no renamed table (an alias, a CTE, EXCLUDED, ...).
func (a *analysis) qualifier(schema, table string) (string, error) {
	var name string
	for _, r := range a.base() {
		if r.rv.Alias != nil || r.rv.Relname != table {
			continue
		}
		if schema != "" && r.rv.Schemaname != schema {
			continue
		}
		if name != "" && name != r.name {
			return "", parseErr("column qualifier %s is ambiguous after renaming (%s, %s)", table, name, r.name)
		}
		name = r.name
	}
	return name, nil
}

// nameToken finds the token of the name part `skip` positions (each a dot
// and a name) after the token starting at byte offset loc, and checks that
// it spells want.
func nameToken(query string, toks []*pg.ScanToken, loc, skip int, want string) (*pg.ScanToken, error) {
	i := sort.Search(len(toks), func(i int) bool { return int(toks[i].Start) >= loc })
	if i == len(toks) || int(toks[i].Start) != loc {
		return nil, parseErr("no token at offset %d", loc)
	}
	next := func(i int) int {
		for i++; i < len(toks); i++ {
			if t := toks[i].Token; t != pg.Token_SQL_COMMENT && t != pg.Token_C_COMMENT {
				return i
			}
		}
		return -1
	}
	for ; skip > 0; skip-- {
		if i = next(i); i < 0 || toks[i].Token != pg.Token_ASCII_46 {
			return nil, parseErr("unexpected qualified name at offset %d", loc)
		}
		if i = next(i); i < 0 {
			return nil, parseErr("unexpected qualified name at offset %d", loc)
		}
	}
	t := toks[i]
	if !spells(query[t.Start:t.End], want) {
		return nil, parseErr("name at offset %d is %q, not %q", t.Start, query[t.Start:t.End], want)
	}
	return t, nil
}

// spells reports whether the identifier token text denotes name.
func spells(text, name string) bool {
	if len(text) >= 2 && text[0] == '"' {
		return strings.ReplaceAll(text[1:len(text)-1], `""`, `"`) == name
	}
	if len(text) >= 2 && (text[0] == 'U' || text[0] == 'u') && text[1] == '&' {
		return true // Unicode-escaped identifier: the re-parse check covers it
	}
	return foldLower(text) == name
}

// foldLower folds ASCII letters as PostgreSQL does for unquoted identifiers.
func foldLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// quoteIdent writes name bare when PostgreSQL reads it back unchanged (a
// lower-case identifier that is no keyword), quoted otherwise.
func quoteIdent(name string) string {
	if plain(name) && bareName(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// words remembers how PostgreSQL's scanner reads a word on its own
// (wordOneIdent, wordOneOther or wordOther): quoteIdent asks it of every
// new name and localName of every unquoted name it finds, and asking the
// scanner is a cgo call and a protobuf decode. A service's names are a
// small fixed set (its tables, their shadow twins); at most wordsMax words
// are kept, past that the scanner is asked each time. The scanner is
// context-free for words: a keyword is a keyword wherever it stands.
var (
	words    sync.Map // string -> uint8
	wordsLen atomic.Int64
)

const (
	wordsMax = 4096

	wordOther    = 0 // not exactly one token
	wordOneIdent = 1 // one identifier token that is no keyword
	wordOneOther = 2 // one token of another kind (a keyword)
)

func wordKind(w string) uint8 {
	if v, ok := words.Load(w); ok {
		return v.(uint8)
	}
	s, err := pg.Scan(w)
	if err != nil {
		return wordOther
	}
	k := uint8(wordOther)
	if len(s.Tokens) == 1 && s.Tokens[0].Start == 0 && int(s.Tokens[0].End) == len(w) {
		k = wordOneOther
		if s.Tokens[0].Token == pg.Token_IDENT && s.Tokens[0].KeywordKind == pg.KeywordKind_NO_KEYWORD {
			k = wordOneIdent
		}
	}
	if wordsLen.Load() < wordsMax {
		if _, loaded := words.LoadOrStore(strings.Clone(w), k); !loaded {
			wordsLen.Add(1)
		}
	}
	return k
}

func bareName(name string) bool { return wordKind(name) == wordOneIdent }

// nameFinder finds the name tokens of a rewrite in query: by lexing the
// few bytes at the parser's location when the name is spelled plainly
// (localName), else with libpg_query's scanner over the whole statement,
// called at most once per rewrite.
type nameFinder struct {
	query   string
	toks    []*pg.ScanToken
	err     error
	scanned bool
}

func (f *nameFinder) tokens() ([]*pg.ScanToken, error) {
	if !f.scanned {
		f.scanned = true
		s, err := pg.Scan(f.query)
		if err != nil {
			f.err = parseErr("scan: %v", err)
		} else {
			f.toks = s.Tokens
		}
	}
	return f.toks, f.err
}

// name returns the byte range of the name part skip positions after the
// name starting at loc, and whether its token is an identifier (not a
// keyword used as a name). It fails as nameToken does.
func (f *nameFinder) name(loc, skip int, want string) (start, end int, ident bool, err error) {
	if s, e, id, ok := localName(f.query, loc, skip, want); ok {
		return s, e, id, nil
	}
	toks, err := f.tokens()
	if err != nil {
		return 0, 0, false, err
	}
	t, err := nameToken(f.query, toks, loc, skip, want)
	if err != nil {
		return 0, 0, false, err
	}
	return int(t.Start), int(t.End), t.Token == pg.Token_IDENT, nil
}

// localName is nameToken for a name spelled plainly: at loc, a token
// boundary, skip+1 name parts (unquoted words or "quoted" names without
// U&) separated by dots with at most spaces, tabs and line breaks around
// them. ok is false for anything else (comments, U&"...", a word glued
// to a quote), and the scanner decides.
func localName(q string, loc, skip int, want string) (start, end int, ident, ok bool) {
	if loc < 0 || loc >= len(q) || loc > 0 && joins(q[loc-1]) {
		return 0, 0, false, false
	}
	i := loc
	for {
		s, e, quoted, good := lexName(q, i)
		if !good {
			return 0, 0, false, false
		}
		if skip == 0 {
			text := q[s:e]
			if !spells(text, want) {
				return 0, 0, false, false
			}
			if quoted {
				return s, e, true, true
			}
			switch wordKind(text) {
			case wordOneIdent:
				return s, e, true, true
			case wordOneOther:
				return s, e, false, true
			}
			return 0, 0, false, false
		}
		i = skipBlank(q, e)
		if i >= len(q) || q[i] != '.' {
			return 0, 0, false, false
		}
		i = skipBlank(q, i+1)
		skip--
	}
}

// lexName reads the name token at i: a "quoted" name or an unquoted word.
func lexName(q string, i int) (start, end int, quoted, ok bool) {
	if i >= len(q) {
		return 0, 0, false, false
	}
	c := q[i]
	if c == '"' {
		for j := i + 1; j < len(q); j++ {
			if q[j] != '"' {
				continue
			}
			if j+1 < len(q) && q[j+1] == '"' {
				j++
				continue
			}
			if j == i+1 {
				return 0, 0, false, false // "" is no name
			}
			return i, j + 1, true, true
		}
		return 0, 0, false, false
	}
	if !(c == '_' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return 0, 0, false, false
	}
	j := i + 1
	for j < len(q) {
		c := q[j]
		if c == '_' || c == '$' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			j++
			continue
		}
		break
	}
	if j < len(q) && (q[j] == '\'' || q[j] == '"' || q[j] == '&') {
		return 0, 0, false, false // E'..', U&"..", a word glued to a quote
	}
	return i, j, false, true
}

func skipBlank(q string, i int) int {
	for i < len(q) && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n' || q[i] == '\r') {
		i++
	}
	return i
}

func plain(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '$'):
		default:
			return false
		}
	}
	return true
}
