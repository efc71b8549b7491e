package mysql

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"

	// The parser needs a value-expression driver; test_driver is the
	// dependency-free one (literals and ? placeholders restore verbatim).
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/shadowlane/shadowlane/internal/ctescope"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// restoreFlags writes every identifier in backquotes, strings in single
// quotes with backslashes escaped (MySQL's and MariaDB's default sql_mode
// reads backslash escapes), and keywords in upper case. The output is valid
// for MySQL 5.7+/8 and MariaDB 10+.
const restoreFlags = format.RestoreStringSingleQuotes |
	format.RestoreStringEscapeBackslash |
	format.RestoreKeyWordUppercase |
	format.RestoreNameBackQuotes |
	format.RestoreStringWithoutDefaultCharset

// Dialect rewrites MySQL and MariaDB statements. The zero value is not
// usable; call New. A Dialect is safe for concurrent use.
type Dialect struct {
	parsers sync.Pool
}

var _ sqlshadow.Dialect = (*Dialect)(nil)

// New returns the MySQL/MariaDB dialect. Statements are parsed with the
// server's default sql_mode (backslash escapes on, "..." is a string).
func New() *Dialect {
	d := &Dialect{}
	d.parsers.New = func() any { return parser.New() }
	return d
}

// Name returns "mysql".
func (*Dialect) Name() string { return "mysql" }

func parseErr(format string, args ...any) error {
	return fmt.Errorf("%w: mysql: %s", sqlshadow.ErrParse, fmt.Sprintf(format, args...))
}

func (d *Dialect) parse(query string) (ast.StmtNode, error) {
	p := d.parsers.Get().(*parser.Parser)
	defer d.parsers.Put(p)
	stmts, _, err := p.Parse(query, "", "")
	if err != nil {
		// The parser's messages quote the statement near the error; they
		// never carry bound argument values (those are not in the text).
		return nil, parseErr("%v", err)
	}
	if len(stmts) != 1 {
		return nil, parseErr("want exactly one statement, got %d", len(stmts))
	}
	return stmts[0], nil
}

// Rewrite implements sqlshadow.Dialect. See the package documentation for
// what is renamed and how statements are classified.
func (d *Dialect) Rewrite(query string, rename sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	return d.RewriteFuncs(query, rename, nil)
}

// RewriteFuncs implements sqlshadow.FuncDialect: Rewrite that also renames
// function calls with funcs.
func (d *Dialect) RewriteFuncs(query string, rename sqlshadow.RenameFunc, funcs sqlshadow.FuncRenameFunc) (sqlshadow.Result, error) {
	// A statement in plain lexical terms (see inplace.go) holds no
	// comment, so no executable one, and no keyword RETURNING, so no
	// RETURNING clause to set aside: the scans for both are skipped.
	var buf [32]ident
	toks, simple := simpleIdents(query, buf[:0])
	var execs []string
	body, returning, retExpr := query, "", ""
	if !simple {
		execs = ExecComments(query)
		body, returning = splitReturning(query)
		if returning == "" {
			if b, list, ok := splitReturningExpr(query); ok {
				body, retExpr = b, list
			}
		}
	}
	stmt, err := d.parse(body)
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if returning != "" || retExpr != "" {
		switch stmt.(type) {
		case *ast.InsertStmt, *ast.DeleteStmt:
		default:
			return sqlshadow.Result{}, parseErr("RETURNING is only understood on INSERT, REPLACE and DELETE")
		}
	}
	a := getAnalysis()
	defer putAnalysis(a)
	res := analyseStmt(a, query, stmt, execs)
	if res.Kind == sqlshadow.KindDDL {
		// Never rewritten: the caller refuses DDL for marked traffic.
		return res, nil
	}
	var ret *returningPart
	if retExpr != "" {
		if ret, err = d.returning(stmt, retExpr); err != nil {
			return sqlshadow.Result{}, err
		}
		res.Tables = mergeUnique(res.Tables, ret.a.uses())
		res.Funcs = mergeUnique(res.Funcs, ret.a.funcList())
		if res.Session == "" {
			res.Session = ret.a.session
		}
	}
	if (rename == nil && funcs == nil) || (len(a.refs) == 0 && len(a.funcs) == 0 && ret == nil) || len(execs) > 0 {
		// A statement with executable comments is never rewritten: the
		// restorer would drop the comments (the caller refuses it). The
		// statement is unchanged: this analysis is what a re-parse of it
		// would give.
		if rename != nil || funcs != nil {
			v := res
			res.Verified = &v
		}
		return res, nil
	}
	if rename == nil {
		rename = func(t sqlshadow.Table, _ bool) (string, error) { return t.Name, nil }
	}
	if err := a.rename(rename); err != nil {
		return sqlshadow.Result{}, err
	}
	allFuncs := a.funcs
	if ret != nil {
		if err := ret.a.rename(rename); err != nil {
			return sqlshadow.Result{}, err
		}
		allFuncs = append(allFuncs[:len(allFuncs):len(allFuncs)], ret.a.funcs...)
	}
	funcRenamed := false
	if funcs != nil {
		for _, f := range allFuncs {
			name, err := funcs(f.f)
			if err != nil {
				return sqlshadow.Result{}, err
			}
			if name == f.f.Name {
				continue
			}
			if !plainIdent(name) {
				return sqlshadow.Result{}, parseErr("function twin name %q must be a plain identifier", name)
			}
			f.fc.FnName = ast.NewCIStr(name)
			funcRenamed = true
		}
	}
	if simple && ret == nil && !funcRenamed {
		if out, fresh, ok := a.inPlace(query, toks); ok {
			// The text of out parses to the renamed tree (inplace.go).
			var verified *sqlshadow.Result
			if fresh {
				// Its analysis is this one with the names replaced.
				verified = &sqlshadow.Result{SQL: out, Kind: res.Kind, Tables: a.renamedUses(res.Tables),
					Funcs: res.Funcs, Session: res.Session}
			} else if verified, err = checkRewrite(out, stmt, nil, a.want()); err != nil {
				return sqlshadow.Result{}, err
			}
			res.SQL, res.Verified = out, verified
			return res, nil
		}
	}
	var sb strings.Builder
	sb.Grow(len(query) + 16*len(a.refs))
	if err := stmt.Restore(format.NewRestoreCtx(restoreFlags, &sb)); err != nil {
		return sqlshadow.Result{}, parseErr("restore: %v", err)
	}
	out := sb.String()
	verified, err := d.verify(out, a.want())
	if err != nil {
		return sqlshadow.Result{}, err
	}
	if returning == "" && ret == nil {
		// verify parsed out itself: hand its analysis to the caller,
		// which checks it instead of parsing out once more.
		res.Verified = verified
	}
	if returning != "" {
		out += " RETURNING " + returning
	}
	if ret != nil {
		list, err := d.restoreReturning(ret)
		if err != nil {
			return sqlshadow.Result{}, err
		}
		out += " RETURNING " + list
	}
	res.SQL = out
	return res, nil
}

// returningPart is a MariaDB RETURNING list of expressions, analysed as
// the field list of SELECT <list> FROM <target>: qualified columns of the
// target follow its rename, and subqueries and functions are checked like
// any other.
type returningPart struct {
	sel *ast.SelectStmt
	a   *analysis
}

// returning parses list as the RETURNING list of stmt (a single-table
// INSERT, REPLACE or DELETE).
func (d *Dialect) returning(stmt ast.StmtNode, list string) (*returningPart, error) {
	var srcs []topSource
	switch s := stmt.(type) {
	case *ast.InsertStmt:
		srcs = tableRefs(s.Table)
	case *ast.DeleteStmt:
		if s.IsMultiTable {
			return nil, parseErr("RETURNING on a multi-table DELETE")
		}
		srcs = tableRefs(s.TableRefs)
	}
	if len(srcs) != 1 {
		return nil, parseErr("RETURNING needs a single target table")
	}
	from := quoteBack(srcs[0].tn.Name.O)
	if srcs[0].tn.Schema.O != "" {
		from = quoteBack(srcs[0].tn.Schema.O) + "." + from
	}
	if srcs[0].alias != "" {
		from += " AS " + quoteBack(srcs[0].alias)
	}
	st, err := d.parse("SELECT " + list + " FROM " + from)
	if err != nil {
		return nil, parseErr("RETURNING list: %v", err)
	}
	sel, ok := st.(*ast.SelectStmt)
	if !ok || sel.Fields == nil || sel.From == nil || sel.Where != nil || sel.GroupBy != nil || sel.Having != nil ||
		sel.OrderBy != nil || sel.Limit != nil || sel.LockInfo != nil || sel.SelectIntoOpt != nil || sel.With != nil {
		return nil, parseErr("RETURNING list is not a plain expression list")
	}
	a := newAnalysis()
	sel.Accept(a)
	if a.into || a.locks {
		return nil, parseErr("RETURNING list holds SELECT ... INTO or a locking read")
	}
	a.resolveWrites(sqlshadow.KindRead)
	return &returningPart{sel: sel, a: a}, nil
}

// restoreReturning writes the renamed RETURNING list, after checking that
// the whole synthetic SELECT re-parses with exactly the renamed tables.
func (d *Dialect) restoreReturning(r *returningPart) (string, error) {
	var full strings.Builder
	if err := r.sel.Restore(format.NewRestoreCtx(restoreFlags, &full)); err != nil {
		return "", parseErr("restore RETURNING: %v", err)
	}
	if _, err := d.verify(full.String(), r.a.want()); err != nil {
		return "", err
	}
	var sb strings.Builder
	if err := r.sel.Fields.Restore(format.NewRestoreCtx(restoreFlags, &sb)); err != nil {
		return "", parseErr("restore RETURNING: %v", err)
	}
	return sb.String(), nil
}

func quoteBack(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// mergeUnique appends to a the elements of b it does not hold yet.
func mergeUnique[T comparable](a, b []T) []T {
	seen := map[T]bool{}
	for _, u := range a {
		seen[u] = true
	}
	for _, u := range b {
		if !seen[u] {
			seen[u] = true
			a = append(a, u)
		}
	}
	return a
}

// splitReturningExpr finds a top-level RETURNING keyword (outside strings,
// comments and parentheses) and returns the statement before it and the
// list after it (without a trailing semicolon).
func splitReturningExpr(q string) (body, list string, ok bool) {
	pos := -1
	depth := 0
	n := len(q)
	for i := 0; i < n; {
		if j, ok := skipStringOrLine(q, i); ok {
			i = j
			continue
		}
		switch c := q[i]; {
		case c == '/' && i+1 < n && q[i+1] == '*':
			k := indexFrom(q, i+2, "*/")
			if k < 0 {
				return "", "", false
			}
			i = k + 2
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && (c == 'r' || c == 'R') && i+9 <= n && strings.EqualFold(q[i:i+9], "RETURNING") &&
			(i == 0 || !isWordByte(q[i-1])) && (i+9 == n || !isWordByte(q[i+9])):
			pos = i
			i += 9
			continue
		}
		i++
	}
	if pos <= 0 {
		return "", "", false
	}
	list = strings.TrimSpace(q[pos+9:])
	list = strings.TrimSpace(strings.TrimSuffix(list, ";"))
	body = strings.TrimSpace(q[:pos])
	return body, list, list != "" && body != ""
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// returningRE matches a trailing MariaDB RETURNING clause made only of bare
// or backquoted column names and *, the form gorm's MySQL driver sends to
// MariaDB 10.5+. Such a list names no table, so it is set aside while the
// statement is parsed (the TiDB grammar has no RETURNING) and appended to
// the rewritten statement unchanged. Any other RETURNING list stays in the
// statement and fails to parse, so it is refused.
var returningRE = regexp.MustCompile("(?is)^(.*\\S)\\s+RETURNING\\s+((?:`(?:[^`]|``)+`|\\*|[a-z_][a-z0-9_$]*)(?:\\s*,\\s*(?:`(?:[^`]|``)+`|\\*|[a-z_][a-z0-9_$]*))*)\\s*;?\\s*$")

// splitReturning returns the statement without a trailing RETURNING list
// of plain column names, and that list ("" when there is none).
func splitReturning(q string) (body, returning string) {
	if len(q) < 10 || !strings.Contains(strings.ToUpper(q[max(0, len(q)-4096):]), "RETURNING") {
		return q, ""
	}
	m := returningRE.FindStringSubmatch(q)
	if m == nil {
		return q, ""
	}
	return m[1], m[2]
}

// analyseStmt is the analysis of a parsed statement: its classification and
// the Result that Rewrite(query, nil) returns.
func analyseStmt(a *analysis, query string, stmt ast.StmtNode, execs []string) sqlshadow.Result {
	kind := classify(stmt)
	stmt.Accept(a)
	if a.into {
		// SELECT ... INTO anywhere (a union arm, a subquery) writes
		// outside the statement's tables.
		kind = sqlshadow.KindDDL
	}
	if a.locks && kind == sqlshadow.KindRead {
		kind = sqlshadow.KindWrite
	}
	if kind == sqlshadow.KindOther && len(a.refs) > 0 {
		// SET @x = (SELECT ... FROM t) and the like read tables.
		kind = sqlshadow.KindRead
	}
	if kind == sqlshadow.KindDDL {
		// The tables are reported (as written) for the caller's decision
		// and counters.
		return sqlshadow.Result{SQL: query, Kind: kind, Tables: a.ddlTables(), Funcs: a.funcList(), ExecComments: execs}
	}
	a.resolveWrites(kind)
	session := a.session
	if session == "" {
		session = sessionChange(stmt)
	}
	return sqlshadow.Result{SQL: query, Kind: kind, Tables: a.uses(), Funcs: a.funcList(), Session: session, ExecComments: execs}
}

// verify re-parses the rewritten statement and checks that the tables it
// references are exactly the renamed ones: a rewrite that would leave a
// production table behind, or that does not re-parse, is refused. It
// returns the analysis of out, exactly what Rewrite(out, nil) returns, or
// nil when Rewrite would not parse out as a whole (a RETURNING list it
// sets aside).
func (d *Dialect) verify(out string, want map[string]int) (*sqlshadow.Result, error) {
	stmt, err := d.parse(out)
	if err != nil {
		return nil, fmt.Errorf("rewritten statement does not re-parse: %w", err)
	}
	verified, err := checkRewrite(out, stmt, ExecComments(out), want)
	if verified == nil || err != nil {
		return nil, err
	}
	if body, returning := splitReturning(out); body != out || returning != "" {
		return nil, nil
	}
	if _, _, ok := splitReturningExpr(out); ok {
		return nil, nil
	}
	return verified, nil
}

// checkRewrite analyses stmt, the tree of the rewritten statement out, and
// checks that the tables it references are exactly want.
func checkRewrite(out string, stmt ast.StmtNode, execs []string, want map[string]int) (*sqlshadow.Result, error) {
	b := getAnalysis()
	defer putAnalysis(b)
	res := analyseStmt(b, out, stmt, execs)
	if res.Kind == sqlshadow.KindDDL {
		// analyseStmt does not resolve DDL references.
		b.resolveWrites(res.Kind)
	}
	for _, r := range b.refs {
		if r.alias && r.back == nil {
			return nil, parseErr("rewrite verification failed: %s names no table or alias", r.orig)
		}
	}
	got := map[string]int{}
	for _, r := range b.refs {
		if !r.cte && !r.alias {
			got[r.key()]++
		}
	}
	if len(got) != len(want) {
		return nil, parseErr("rewrite verification failed: tables %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			return nil, parseErr("rewrite verification failed: tables %v, want %v", got, want)
		}
	}
	return &res, nil
}

// classify maps a statement type to a Kind. Anything not known to be a
// plain read, a plain write or table-free is KindDDL, so that marked traffic
// is refused rather than passed through unexamined (CALL, LOAD DATA,
// PREPARE/EXECUTE, SELECT ... INTO OUTFILE, GRANT, ...). EXPLAIN is always
// KindDDL: EXPLAIN ANALYZE runs its statement, and refusing every EXPLAIN
// for load-test traffic costs nothing real. So are USE and SET GLOBAL,
// which change the state of a pooled connection or of the whole server
// that production statements would inherit.
func classify(stmt ast.StmtNode) sqlshadow.Kind {
	switch s := stmt.(type) {
	case *ast.SelectStmt:
		if s.SelectIntoOpt != nil {
			return sqlshadow.KindDDL
		}
		return sqlshadow.KindRead
	case *ast.SetOprStmt:
		return sqlshadow.KindRead
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.LockTablesStmt:
		return sqlshadow.KindWrite
	case *ast.ShowStmt:
		return sqlshadow.KindRead
	case *ast.SetStmt:
		for _, v := range s.Variables {
			if v.IsGlobal || v.IsInstance {
				return sqlshadow.KindDDL
			}
		}
		return sqlshadow.KindOther // session state: see sessionChange
	case *ast.BeginStmt, *ast.CommitStmt, *ast.RollbackStmt, *ast.SavepointStmt,
		*ast.ReleaseSavepointStmt, *ast.UnlockTablesStmt, *ast.DoStmt:
		return sqlshadow.KindOther
	}
	return sqlshadow.KindDDL
}

// sessionChange describes how stmt changes the state of its connection
// beyond itself ("" when it does not). MySQL has no SET LOCAL: every SET
// (session system variables, user variables, NAMES, CHARACTER SET, even
// SET TRANSACTION, which applies to the connection's next transaction) and
// LOCK TABLES (the locks outlive the statement and restrict every later
// statement of the connection) change it.
func sessionChange(stmt ast.StmtNode) string {
	switch s := stmt.(type) {
	case *ast.SetStmt:
		for _, v := range s.Variables {
			switch {
			case v.Name == ast.SetNames || v.Name == ast.SetCharset:
				return "SET NAMES / CHARACTER SET"
			case v.IsSystem:
				return "SET SESSION " + v.Name
			default:
				return "SET @" + v.Name
			}
		}
		return "SET"
	case *ast.LockTablesStmt:
		return "LOCK TABLES"
	}
	return ""
}

// funcRef is one function call of the statement.
type funcRef struct {
	fc *ast.FuncCallExpr
	f  sqlshadow.Func
}

// seqFuncs are the MariaDB sequence functions; true when they advance the
// sequence. Their sequence argument is a table name, renamed like a table.
var seqFuncs = map[string]bool{"nextval": true, "setval": true, "lastval": false}

// grammarFuncs are functions the parser produces for built-in syntax
// (DATE_ADD(x, INTERVAL ...), EXTRACT(... FROM ...), POSITION(... IN
// ...), CHAR(...), IF(...), ...) under names the generated list cannot
// confirm by a plain call on the server.
var grammarFuncs = map[string]bool{
	"char_func": true, "date_add": true, "date_sub": true, "extract": true, "position": true,
	"timestampadd": true, "timestampdiff": true, "get_format": true, "if": true, "cast": true,
	"adddate": true, "subdate": true, "trim": true, "substring": true, "convert": true,
	"current_timestamp": true, "current_date": true, "current_time": true, "localtime": true,
	"localtimestamp": true, "utc_timestamp": true, "utc_date": true, "utc_time": true,
	"weight_string": true, "json_value": true, "json_query": true,
}

func (a *analysis) addFunc(fc *ast.FuncCallExpr) {
	name := fc.FnName.L
	if fc.Schema.L == "" {
		if write, ok := seqFuncs[name]; ok && len(fc.Args) > 0 {
			if tn, ok := fc.Args[0].(*ast.TableNameExpr); ok && tn.Name != nil {
				if write {
					if a.seqWrite == nil {
						a.seqWrite = map[*ast.TableName]bool{}
					}
					a.seqWrite[tn.Name] = true
				}
				return // the sequence is renamed like a table
			}
		}
		if name == "last_insert_id" && len(fc.Args) > 0 {
			a.session = "LAST_INSERT_ID(expr)"
		}
	}
	f := sqlshadow.Func{Schema: fc.Schema.O, Name: fc.FnName.O}
	if fc.Schema.L == "" {
		_, safe := safeFuncs[name]
		f.Safe = safe || grammarFuncs[name]
	}
	a.funcs = append(a.funcs, funcRef{fc, f})
}

func (a *analysis) funcList() []sqlshadow.Func {
	var out []sqlshadow.Func
	for _, f := range a.funcs {
		if !slices.Contains(out, f.f) {
			out = append(out, f.f)
		}
	}
	return out
}

func plainIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// ref is one table reference found in the statement.
type ref struct {
	tn    *ast.TableName
	orig  sqlshadow.Table
	origL string // orig.Name in lower case
	asOf  string // alias given in FROM, lower case; "" when none
	cte   bool   // names a CTE in scope: never renamed
	alias bool   // a DELETE target list or FOR UPDATE OF entry naming an alias
	write bool
	// top is the statement (UPDATE/DELETE/INSERT) whose top-level FROM list
	// holds this reference, nil otherwise.
	top ast.Node
	// back points at the base reference a DELETE list or FOR UPDATE OF
	// entry names, so both get the same new name.
	back    *ref
	name    string    // new name after rename
	newName ast.CIStr // the same as the parser spells it
}

func (r *ref) key() string {
	return strings.ToLower(sqlshadow.Table{Schema: r.tn.Schema.O, Name: r.tn.Name.O}.String())
}

type analysis struct {
	refs    []*ref
	byNode  smallMap[*ast.TableName, *ref]
	aliases smallMap[string, struct{}] // every alias and derived-table name, lower case
	refOnly smallMap[*ast.TableName, struct{}]
	scopes  ctescope.Scopes // visible CTE names, innermost last
	owners  []ast.Node      // statement owning each scope
	cols    []*ast.ColumnName
	stars   []*ast.WildCardField
	tops    []ast.Node // INSERT/UPDATE/DELETE statements met
	// pendingTop maps a table named in a DML statement's own table list to
	// that statement, recorded before the visitor reaches the table.
	pendingTop smallMap[*ast.TableName, ast.Node]
	locks      bool
	into       bool // SELECT ... INTO somewhere in the statement
	funcs      []funcRef
	seqWrite   map[*ast.TableName]bool // sequences advanced by NEXTVAL/SETVAL
	session    string
	// sites are the names rename may have changed, old and new, for the
	// in-place rewrite (inplace.go).
	sites []site
	slab  []ref // storage of the first refs
	// spareUses is room for renamedUses, allocated with uses' list
	spareUses []sqlshadow.Use
}

func newAnalysis() *analysis {
	return &analysis{slab: make([]ref, 0, 16)}
}

// analyses recycles analyses: a cold rewrite allocates little besides
// what the parser does.
var analyses = sync.Pool{New: func() any { return newAnalysis() }}

func getAnalysis() *analysis { return analyses.Get().(*analysis) }

// putAnalysis resets a and returns it to the pool; nothing of a may be
// used afterwards.
func putAnalysis(a *analysis) {
	a.byNode.reset()
	a.aliases.reset()
	a.refOnly.reset()
	a.pendingTop.reset()
	if len(a.seqWrite) > 0 {
		clear(a.seqWrite)
	}
	*a = analysis{byNode: a.byNode, aliases: a.aliases, refOnly: a.refOnly, pendingTop: a.pendingTop,
		seqWrite: a.seqWrite, refs: emptied(a.refs), slab: emptied(a.slab), cols: emptied(a.cols),
		stars: emptied(a.stars), tops: emptied(a.tops), funcs: emptied(a.funcs), scopes: a.scopes[:0],
		owners: emptied(a.owners), sites: emptied(a.sites)}
	analyses.Put(a)
}

// emptied clears s (no pointers kept alive by the pool) and returns it
// with length 0.
func emptied[T any](s []T) []T {
	if len(s) > 0 {
		clear(s)
	}
	return s[:0]
}

func (a *analysis) pushScope(owner ast.Node) {
	a.scopes.Push()
	a.owners = append(a.owners, owner)
}

func withOf(n ast.Node) *ast.WithClause {
	switch s := n.(type) {
	case *ast.SelectStmt:
		return s.With
	case *ast.SetOprStmt:
		return s.With
	case *ast.UpdateStmt:
		return s.With
	case *ast.DeleteStmt:
		return s.With
	}
	return nil
}

// Enter implements ast.Visitor.
func (a *analysis) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.SetOprStmt:
		if x.With != nil {
			a.pushScope(n)
		}
	case *ast.CommonTableExpression:
		if x.IsRecursive || a.recursiveScope() {
			a.scopes.Add(x.Name.L)
		}
	case *ast.TableSource:
		if x.AsName.L != "" {
			a.aliases.put(x.AsName.L, struct{}{})
		}
		if tn, ok := x.Source.(*ast.TableName); ok {
			a.addRef(tn, x.AsName.L)
		}
	case *ast.TableName:
		if !a.byNode.has(x) {
			a.addRef(x, "")
		}
	case *ast.SelectStmt:
		if x.With != nil {
			a.pushScope(n)
		}
		if x.SelectIntoOpt != nil {
			a.into = true
		}
		if x.LockInfo != nil && x.LockInfo.LockType != ast.SelectLockNone {
			a.locks = true
			// The restorer writes share locks as FOR SHARE, which MariaDB
			// does not accept; a stronger lock on shadow rows keeps the
			// statement valid on both servers with the same results.
			switch x.LockInfo.LockType {
			case ast.SelectLockForShare:
				x.LockInfo.LockType = ast.SelectLockForUpdate
			case ast.SelectLockForShareNoWait:
				x.LockInfo.LockType = ast.SelectLockForUpdateNoWait
			case ast.SelectLockForShareSkipLocked:
				x.LockInfo.LockType = ast.SelectLockForUpdateSkipLocked
			}
			for _, tn := range x.LockInfo.Tables {
				a.refOnly.put(tn, struct{}{})
			}
		}
	case *ast.DeleteStmt:
		if x.With != nil {
			a.pushScope(n)
		}
		a.tops = append(a.tops, x)
		if x.Tables != nil {
			for _, tn := range x.Tables.Tables {
				a.refOnly.put(tn, struct{}{})
			}
		}
		a.markTop(x, x.TableRefs)
	case *ast.UpdateStmt:
		if x.With != nil {
			a.pushScope(n)
		}
		a.tops = append(a.tops, x)
		a.markTop(x, x.TableRefs)
	case *ast.InsertStmt:
		a.tops = append(a.tops, x)
		a.markTop(x, x.Table)
	case *ast.ColumnName:
		if x.Table.L != "" {
			a.cols = append(a.cols, x)
		}
	case *ast.FuncCallExpr:
		a.addFunc(x)
	case *ast.VariableExpr:
		if x.Value != nil {
			a.session = "assignment to @" + x.Name
		}
	case *ast.SelectField:
		// SelectField.Accept does not visit its wildcard.
		if x.WildCard != nil && x.WildCard.Table.L != "" {
			a.stars = append(a.stars, x.WildCard)
		}
	}
	return n, false
}

// Leave implements ast.Visitor.
func (a *analysis) Leave(n ast.Node) (ast.Node, bool) {
	if len(a.scopes) == 0 {
		return n, true
	}
	if cte, ok := n.(*ast.CommonTableExpression); ok {
		// A non-recursive CTE becomes visible after its own definition.
		a.scopes.Add(cte.Name.L)
	}
	if k := len(a.owners); k > 0 && a.owners[k-1] == n {
		a.scopes.Pop()
		a.owners = a.owners[:k-1]
	}
	return n, true
}

func (a *analysis) recursiveScope() bool {
	if k := len(a.owners); k > 0 {
		if w := withOf(a.owners[k-1]); w != nil {
			return w.IsRecursive
		}
	}
	return false
}

// topSource is a table named directly in a DML statement's table list.
type topSource struct {
	tn    *ast.TableName
	alias string
}

// tableRefs lists the tables named directly in a FROM/UPDATE/INTO table
// list (through joins and parentheses, not into subqueries).
func tableRefs(c *ast.TableRefsClause) []topSource {
	if c == nil || c.TableRefs == nil {
		return nil
	}
	var out []topSource
	var walk func(n ast.ResultSetNode, alias string)
	walk = func(n ast.ResultSetNode, alias string) {
		switch x := n.(type) {
		case *ast.Join:
			if x.Left != nil {
				walk(x.Left, "")
			}
			if x.Right != nil {
				walk(x.Right, "")
			}
		case *ast.TableSource:
			walk(x.Source, x.AsName.L)
		case *ast.TableName:
			out = append(out, topSource{x, alias})
		}
	}
	walk(c.TableRefs, "")
	return out
}

// markTop records that the tables named directly in c (what tableRefs
// lists) sit in stmt's own table list; each ref is created (or found) when
// the visitor reaches its table.
func (a *analysis) markTop(stmt ast.Node, c *ast.TableRefsClause) {
	if c != nil && c.TableRefs != nil {
		a.markTopNode(stmt, c.TableRefs)
	}
}

func (a *analysis) markTopNode(stmt ast.Node, n ast.ResultSetNode) {
	switch x := n.(type) {
	case *ast.Join:
		if x.Left != nil {
			a.markTopNode(stmt, x.Left)
		}
		if x.Right != nil {
			a.markTopNode(stmt, x.Right)
		}
	case *ast.TableSource:
		a.markTopNode(stmt, x.Source)
	case *ast.TableName:
		a.pendingTop.put(x, stmt)
	}
}

func (a *analysis) addRef(tn *ast.TableName, alias string) {
	var r *ref
	if len(a.slab) < cap(a.slab) {
		a.slab = append(a.slab, ref{})
		r = &a.slab[len(a.slab)-1]
	} else {
		r = new(ref)
	}
	*r = ref{tn: tn, orig: sqlshadow.Table{Schema: tn.Schema.O, Name: tn.Name.O}, origL: tn.Name.L, asOf: alias}
	if a.refOnly.has(tn) {
		r.alias = true // resolved against the FROM list later
	} else if tn.Schema.L == "" && a.scopes.Has(tn.Name.L) {
		r.cte = true
	}
	r.top, _ = a.pendingTop.get(tn)
	a.byNode.put(tn, r)
	a.refs = append(a.refs, r)
}

// base reports whether r is a real table reference (renamed).
func (r *ref) base() bool { return !r.cte && !r.alias }

// resolveWrites decides which references are written.
func (a *analysis) resolveWrites(kind sqlshadow.Kind) {
	// Resolve DELETE lists and FOR UPDATE OF entries to the references they
	// name: an alias stays as written, a table name follows its table.
	for _, r := range a.refs {
		if !r.alias {
			continue
		}
		for _, b := range a.refs {
			if !b.base() {
				continue
			}
			if b.asOf != "" && b.asOf == r.tn.Name.L && r.tn.Schema.L == "" {
				r.back = b
				break
			}
			if b.asOf == "" && b.tn.Name.L == r.tn.Name.L && (r.tn.Schema.L == "" || r.tn.Schema.L == b.tn.Schema.L) {
				r.back = b
				break
			}
		}
	}
	for _, r := range a.refs {
		if a.seqWrite[r.tn] && r.base() {
			r.write = true
		}
	}
	if a.locks || (kind == sqlshadow.KindWrite && len(a.tops) == 0) {
		// Locking reads, LOCK TABLES: every table counts as written.
		for _, r := range a.refs {
			if r.base() {
				r.write = true
			}
		}
	}
	for _, stmt := range a.tops {
		var tops []*ref
		for _, r := range a.refs {
			if r.top == stmt && r.base() {
				tops = append(tops, r)
			}
		}
		switch s := stmt.(type) {
		case *ast.InsertStmt:
			markAll(tops)
		case *ast.DeleteStmt:
			if s.Tables == nil || len(s.Tables.Tables) == 0 {
				markAll(tops)
				continue
			}
			for _, tn := range s.Tables.Tables {
				if r, _ := a.byNode.get(tn); r != nil && r.back != nil {
					r.back.write = true
				} else {
					markAll(tops) // unresolved: assume the worst
				}
			}
		case *ast.UpdateStmt:
			if len(tops) == 1 {
				markAll(tops)
				continue
			}
			for _, as := range s.List {
				t := resolveQualifier(tops, as.Column)
				if t == nil {
					markAll(tops)
					continue
				}
				t.write = true
			}
		}
	}
}

func markAll(rs []*ref) {
	for _, r := range rs {
		r.write = true
	}
}

func resolveQualifier(rs []*ref, c *ast.ColumnName) *ref {
	if c == nil || c.Table.L == "" {
		return nil
	}
	for _, r := range rs {
		if r.asOf != "" {
			if r.asOf == c.Table.L && c.Schema.L == "" {
				return r
			}
			continue
		}
		if r.tn.Name.L == c.Table.L && (c.Schema.L == "" || c.Schema.L == r.tn.Schema.L) {
			return r
		}
	}
	return nil
}

// uses lists the real tables referenced, in order of appearance,
// deduplicated by (table, write).
func (a *analysis) uses() []sqlshadow.Use {
	var out []sqlshadow.Use
	if len(a.refs) > 64 {
		seen := map[sqlshadow.Use]bool{}
		for _, r := range a.refs {
			if u := (sqlshadow.Use{Table: r.orig, Write: r.write}); r.base() && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
		return out
	}
	if len(a.refs) > 0 {
		// One allocation for this list and the renamed one
		// (renamedUses), each capped at its own half.
		n := len(a.refs)
		buf := make([]sqlshadow.Use, 0, 2*n)
		out, a.spareUses = buf[:0:n], buf[n:n:2*n]
	}
	for _, r := range a.refs {
		if r.base() {
			out = appendUse(out, sqlshadow.Use{Table: r.orig, Write: r.write})
		}
	}
	return out
}

// renamedUses is uses, given as us, with the new names of rename.
func (a *analysis) renamedUses(us []sqlshadow.Use) []sqlshadow.Use {
	out := a.spareUses
	a.spareUses = nil
	if cap(out) < len(us) {
		out = make([]sqlshadow.Use, 0, len(us))
	}
	if len(a.refs) > 64 {
		seen := map[sqlshadow.Use]bool{}
		for _, r := range a.refs {
			if u := (sqlshadow.Use{Table: sqlshadow.Table{Schema: r.orig.Schema, Name: r.name}, Write: r.write}); r.base() && !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
		return out
	}
	for _, r := range a.refs {
		if r.base() {
			out = appendUse(out, sqlshadow.Use{Table: sqlshadow.Table{Schema: r.orig.Schema, Name: r.name}, Write: r.write})
		}
	}
	return out
}

// appendUse appends u to us unless us holds it already (a linear search:
// statements with more than a few dozen distinct tables are rare, and
// then a map is used).
func appendUse(us []sqlshadow.Use, u sqlshadow.Use) []sqlshadow.Use {
	for _, v := range us {
		if v == u {
			return us
		}
	}
	return append(us, u)
}

func (a *analysis) ddlTables() []sqlshadow.Use {
	var out []sqlshadow.Use
	seen := map[sqlshadow.Table]bool{}
	for _, r := range a.refs {
		if r.cte || seen[r.orig] {
			continue
		}
		seen[r.orig] = true
		out = append(out, sqlshadow.Use{Table: r.orig, Write: true})
	}
	return out
}

type renameKey struct {
	t     sqlshadow.Table
	write bool
}

// rename asks fn for every real table and rewrites table names, DELETE
// lists, FOR UPDATE OF lists and column qualifiers in place.
func (a *analysis) rename(fn sqlshadow.RenameFunc) error {
	type named struct {
		k    renameKey
		name ast.CIStr
	}
	var buf [8]named
	done := buf[:0]
	for _, r := range a.refs {
		if !r.base() {
			continue
		}
		k := renameKey{r.orig, r.write}
		var name ast.CIStr
		ok := false
		for _, d := range done {
			if d.k == k {
				name, ok = d.name, true
				break
			}
		}
		if !ok {
			n, err := fn(r.orig, r.write)
			if err != nil {
				return err
			}
			if n == "" {
				return fmt.Errorf("mysql: rename of %s returned an empty name", r.orig)
			}
			name = ast.NewCIStr(n)
			done = append(done, named{k, name})
		}
		r.name, r.newName = name.O, name
	}
	a.sites = a.sites[:0]
	for _, r := range a.refs {
		old := r.tn.Name.O
		switch {
		case r.base():
			r.tn.Name = r.newName
		case r.alias && r.back != nil && r.back.asOf == "":
			r.tn.Name = r.back.newName
		case r.alias && r.back == nil:
			return parseErr("%s names no table or alias of the statement", r.orig)
		}
		a.sites = append(a.sites, site{old, r.tn.Name.O})
	}
	for _, c := range a.cols {
		if err := a.requalify(c.Schema, &c.Table); err != nil {
			return err
		}
	}
	for _, c := range a.stars {
		if err := a.requalify(c.Schema, &c.Table); err != nil {
			return err
		}
	}
	return nil
}

// requalify gives the table qualifier of a column or wildcard (schema
// and *table) the new name of the reference it names, and records the
// site.
func (a *analysis) requalify(schema ast.CIStr, table *ast.CIStr) error {
	n, err := a.qualifier(schema.L, table.L)
	if err != nil {
		return err
	}
	old := table.O
	if n != nil {
		*table = n.newName
	}
	a.sites = append(a.sites, site{old, table.O})
	return nil
}

// qualifier returns the reference whose new name a column qualifier
// [schema.]table takes, or nil when it names an alias, a CTE or nothing
// renamed.
func (a *analysis) qualifier(schema, table string) (*ref, error) {
	if schema == "" && a.aliases.has(table) {
		return nil, nil
	}
	var name string
	var found *ref
	for _, r := range a.refs {
		if !r.base() || r.asOf != "" || r.tn.Schema.L != schema && schema != "" {
			continue
		}
		if r.origL != table {
			continue
		}
		if name != "" && name != r.name {
			return nil, parseErr("column qualifier %s is ambiguous after renaming (%s, %s)", table, name, r.name)
		}
		name, found = r.name, r
	}
	return found, nil
}

// want is the multiset of tables the rewritten statement must reference.
func (a *analysis) want() map[string]int {
	m := map[string]int{}
	for _, r := range a.refs {
		if r.base() {
			m[strings.ToLower(sqlshadow.Table{Schema: r.tn.Schema.O, Name: r.tn.Name.O}.String())]++
		}
	}
	return m
}
