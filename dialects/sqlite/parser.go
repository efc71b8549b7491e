package sqlite

import (
	"strings"

	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// tableRef is one occurrence of a real table in the statement.
type tableRef struct {
	tok   int // index of the name token
	t     sqlshadow.Table
	write bool
}

// source is a name a scope makes visible to qualified column references.
type source struct {
	schema, name string
	table        int // index into parser.tables; -1 for aliases, CTEs and subqueries
}

type scope struct {
	parent  *scope
	sources []source
}

// qref is a qualified column reference: [schema.]qualifier.column.
type qref struct {
	sc     *scope
	tok    int // qualifier token
	schema string
	table  int // set by resolve: index into parser.tables, -1 for an alias or CTE
}

type parser struct {
	s       string
	toks    []token
	pos     int
	tables  []tableRef
	refs    []qref
	funcs   []int    // name tokens of function calls
	cteVis  []string // CTE names visible here
	ctePend []string // CTE names of the WITH clause being parsed, defined later
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) peekN(n int) token {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}
func (p *parser) isKw(kws ...string) bool {
	k := p.peek().kw()
	for _, w := range kws {
		if k == w {
			return true
		}
	}
	return false
}
func (p *parser) accept(kw string) bool {
	if p.peek().kw() == kw {
		p.pos++
		return true
	}
	return false
}
func (p *parser) expect(kw string) error {
	if !p.accept(kw) {
		return p.unexpected("expected " + kw)
	}
	return nil
}

// acceptKind consumes the next token if it is of kind k.
func (p *parser) acceptKind(k tokKind) bool {
	if p.peek().kind == k {
		p.pos++
		return true
	}
	return false
}
func (p *parser) expectKind(k tokKind, what string) error {
	if p.peek().kind != k {
		return p.unexpected("expected " + what)
	}
	p.pos++
	return nil
}
func (p *parser) unexpected(msg string) error {
	t := p.peek()
	if t.kind == tEOF {
		return parseErr("%s, found end of statement", msg)
	}
	return parseErr("%s, found %q at offset %d", msg, p.s[t.start:t.end], t.start)
}

// statement parses one statement and returns its kind.
func (p *parser) statement() (sqlshadow.Kind, error) {
	switch p.peek().kw() {
	case "EXPLAIN":
		// Parsed so that the tables it names are known (the guard needs
		// them), but always KindDDL: load-test traffic gets no EXPLAIN.
		p.next()
		if p.accept("QUERY") {
			if err := p.expect("PLAN"); err != nil {
				return 0, err
			}
		}
		if p.isKw("EXPLAIN") {
			return 0, p.unexpected("expected a statement after EXPLAIN")
		}
		if _, err := p.statement(); err != nil {
			return 0, err
		}
		return sqlshadow.KindDDL, nil
	case "SELECT", "VALUES":
		return sqlshadow.KindRead, p.selectStmt(nil)
	case "WITH":
		mark := len(p.cteVis)
		if err := p.with(nil); err != nil {
			return 0, err
		}
		var k sqlshadow.Kind
		var err error
		switch p.peek().kw() {
		case "SELECT", "VALUES":
			k, err = sqlshadow.KindRead, p.selectStmt(nil)
		case "INSERT", "REPLACE":
			k, err = sqlshadow.KindWrite, p.insert()
		case "UPDATE":
			k, err = sqlshadow.KindWrite, p.update()
		case "DELETE":
			k, err = sqlshadow.KindWrite, p.delete()
		default:
			return 0, p.unexpected("expected SELECT, INSERT, UPDATE or DELETE after WITH")
		}
		p.cteVis = p.cteVis[:mark]
		return k, err
	case "INSERT", "REPLACE":
		return sqlshadow.KindWrite, p.insert()
	case "UPDATE":
		return sqlshadow.KindWrite, p.update()
	case "DELETE":
		return sqlshadow.KindWrite, p.delete()
	case "BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE":
		p.next()
		for p.peek().kind == tIdent {
			p.next()
		}
		return sqlshadow.KindOther, nil
	case "CREATE", "ALTER", "DROP", "REINDEX", "VACUUM", "ANALYZE", "ATTACH", "DETACH", "PRAGMA":
		// Recognised, never shadowed: consume the rest of the statement.
		for p.peek().kind != tEOF && p.peek().kind != tSemi {
			p.next()
		}
		return sqlshadow.KindDDL, nil
	}
	return 0, p.unexpected("unsupported statement")
}

// with parses a WITH clause; the CTE names stay visible until the caller
// truncates cteVis.
func (p *parser) with(sc *scope) error {
	if err := p.expect("WITH"); err != nil {
		return err
	}
	p.accept("RECURSIVE")
	names, err := p.cteNames()
	if err != nil {
		return err
	}
	savedPend := p.ctePend
	defer func() { p.ctePend = savedPend }()
	for i, name := range names {
		p.next() // the name (checked by cteNames)
		if p.peek().kind == tLParen {
			if err := p.identList(); err != nil {
				return err
			}
		}
		if err := p.expect("AS"); err != nil {
			return err
		}
		if p.accept("NOT") {
			if err := p.expect("MATERIALIZED"); err != nil {
				return err
			}
		} else {
			p.accept("MATERIALIZED")
		}
		if err := p.expectKind(tLParen, "("); err != nil {
			return err
		}
		p.cteVis = append(p.cteVis, name) // a CTE may reference itself (recursive)
		p.ctePend = append(savedPend[:len(savedPend):len(savedPend)], names[i+1:]...)
		if err := p.selectStmt(sc); err != nil {
			return err
		}
		if err := p.expectKind(tRParen, ")"); err != nil {
			return err
		}
		if i < len(names)-1 {
			if err := p.expectKind(tComma, ","); err != nil {
				return err
			}
		}
	}
	return nil
}

// cteNames scans ahead (without consuming) for the names a WITH clause
// defines, so a body that names a CTE defined later can be refused.
func (p *parser) cteNames() ([]string, error) {
	var names []string
	i := p.pos
	for {
		t := p.toks[i]
		if t.kind != tIdent {
			return nil, parseErr("expected a CTE name at offset %d", t.start)
		}
		names = append(names, t.val)
		i++
		for depth := 0; ; i++ {
			k := p.toks[i].kind
			if k == tEOF {
				return nil, parseErr("unterminated WITH clause")
			}
			if k == tLParen {
				depth++
			} else if k == tRParen {
				depth--
			} else if depth == 0 && (k == tComma || p.toks[i].kw() == "SELECT" || p.toks[i].kw() == "INSERT" ||
				p.toks[i].kw() == "REPLACE" || p.toks[i].kw() == "UPDATE" || p.toks[i].kw() == "DELETE" || p.toks[i].kw() == "VALUES") {
				break
			}
		}
		if p.toks[i].kind != tComma {
			return names, nil
		}
		i++
	}
}

func (p *parser) identList() error {
	if err := p.expectKind(tLParen, "("); err != nil {
		return err
	}
	for {
		if err := p.expectKind(tIdent, "a column name"); err != nil {
			return err
		}
		if p.peek().kind == tComma {
			p.next()
			continue
		}
		return p.expectKind(tRParen, ")")
	}
}

// selectStmt parses [WITH] select-core [compound select-core]* [ORDER BY]
// [LIMIT]; parent is the enclosing scope (nil at top level).
func (p *parser) selectStmt(parent *scope) error {
	mark := len(p.cteVis)
	defer func() { p.cteVis = p.cteVis[:mark] }()
	if p.isKw("WITH") {
		if err := p.with(parent); err != nil {
			return err
		}
	}
	var last *scope
	for {
		core := &scope{parent: parent}
		last = core
		switch {
		case p.accept("VALUES"):
			for {
				if err := p.parenthesised(core); err != nil {
					return err
				}
				if !p.acceptKind(tComma) {
					break
				}
			}
		case p.accept("SELECT"):
			if !p.accept("DISTINCT") {
				p.accept("ALL")
			}
			if err := p.exprList(core); err != nil {
				return err
			}
			if p.accept("FROM") {
				if err := p.from(core); err != nil {
					return err
				}
			}
			if err := p.optExpr("WHERE", core); err != nil {
				return err
			}
			if err := p.byList("GROUP", core); err != nil {
				return err
			}
			if err := p.optExpr("HAVING", core); err != nil {
				return err
			}
			if p.accept("WINDOW") {
				for {
					if err := p.expectKind(tIdent, "a window name"); err != nil {
						return err
					}
					if err := p.expect("AS"); err != nil {
						return err
					}
					if err := p.parenthesised(core); err != nil {
						return err
					}
					if !p.acceptKind(tComma) {
						break
					}
				}
			}
		default:
			return p.unexpected("expected SELECT or VALUES")
		}
		if p.accept("UNION") {
			p.accept("ALL")
			continue
		}
		if p.accept("INTERSECT") || p.accept("EXCEPT") {
			continue
		}
		break
	}
	return p.orderLimit(last)
}

// optExpr parses an optional clause: the keyword kw and an expression.
func (p *parser) optExpr(kw string, sc *scope) error {
	if p.accept(kw) {
		return p.expr(sc)
	}
	return nil
}

// byList parses an optional kw BY list (GROUP BY, ORDER BY).
func (p *parser) byList(kw string, sc *scope) error {
	if !p.accept(kw) {
		return nil
	}
	if err := p.expect("BY"); err != nil {
		return err
	}
	return p.exprList(sc)
}

// parenthesised parses a parenthesis: "(", its inside and ")".
func (p *parser) parenthesised(sc *scope) error {
	if err := p.expectKind(tLParen, "("); err != nil {
		return err
	}
	return p.paren(sc)
}

func (p *parser) orderLimit(sc *scope) error {
	if err := p.byList("ORDER", sc); err != nil {
		return err
	}
	if p.accept("LIMIT") {
		if err := p.expr(sc); err != nil {
			return err
		}
		if p.accept("OFFSET") || p.peek().kind == tComma {
			if p.peek().kind == tComma {
				p.next()
			}
			if err := p.expr(sc); err != nil {
				return err
			}
		}
	}
	return nil
}

// from parses a FROM clause (a join of table-or-subquery items) into sc.
func (p *parser) from(sc *scope) error {
	if err := p.tableOrSubquery(sc); err != nil {
		return err
	}
	for {
		switch {
		case p.peek().kind == tComma:
			p.next()
		case p.isKw("NATURAL", "LEFT", "RIGHT", "FULL", "INNER", "CROSS", "JOIN"):
			p.accept("NATURAL")
			if p.accept("LEFT") || p.accept("RIGHT") || p.accept("FULL") {
				p.accept("OUTER")
			} else if !p.accept("INNER") {
				p.accept("CROSS")
			}
			if err := p.expect("JOIN"); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := p.tableOrSubquery(sc); err != nil {
			return err
		}
		if p.accept("USING") {
			if err := p.identList(); err != nil {
				return err
			}
		} else if err := p.optExpr("ON", sc); err != nil {
			return err
		}
	}
}

// notAlias lists the bare words that cannot be a table alias after a table
// reference.
var notAlias = map[string]bool{
	"WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true, "LIMIT": true, "OFFSET": true,
	"UNION": true, "INTERSECT": true, "EXCEPT": true, "WINDOW": true, "ON": true, "USING": true,
	"JOIN": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true, "CROSS": true,
	"NATURAL": true, "OUTER": true, "INDEXED": true, "NOT": true, "SET": true, "RETURNING": true,
	"VALUES": true, "DEFAULT": true, "SELECT": true, "FROM": true, "DO": true, "AS": true,
}

func (p *parser) tableOrSubquery(sc *scope) error {
	if p.peek().kind == tLParen {
		p.next()
		if p.isKw("SELECT", "VALUES", "WITH") {
			if err := p.selectStmt(sc); err != nil {
				return err
			}
			if err := p.expectKind(tRParen, ")"); err != nil {
				return err
			}
			return p.alias(sc, -1, "", "")
		}
		if err := p.from(sc); err != nil {
			return err
		}
		return p.expectKind(tRParen, ")")
	}
	schema, nameTok, err := p.qualifiedName()
	if err != nil {
		return err
	}
	name := p.toks[nameTok].val
	if p.peek().kind == tLParen { // table-valued function
		if schema != "" || tableFunc(name) != tfJSON {
			return parseErr("table-valued function %q is not supported", name)
		}
		p.next()
		if err := p.paren(sc); err != nil {
			return err
		}
		return p.alias(sc, -1, "", name)
	}
	if tableFunc(name) != tfNone && (schema != "" || !p.isCTE(name)) {
		// A table-valued function named without arguments ("FROM
		// orders, json_each WHERE json_each.json = orders.doc"): SQLite
		// reads its eponymous virtual table, unless the schema has a
		// real table of that name, which then wins. The parser cannot
		// see the schema, so every bare form fails closed (pragma_*,
		// dbstat, sqlite_dbpage, ... and the JSON ones alike); the
		// called form json_each(x) is always the function.
		return parseErr("table-valued function %q named without arguments is not supported (write %s(...))", name, name)
	}
	return p.namedTable(sc, schema, nameTok, false)
}

// Table-valued function classes of a name read as a table.
const (
	tfNone    = iota // an ordinary table name
	tfJSON           // json_each and kin: pure functions of their arguments
	tfRefused        // other eponymous virtual tables: schema and pages
)

// tableFunc classifies a name in a table position by SQLite's eponymous
// virtual tables (the modules of pragma_module_list in the SQLite we test
// against, plus the extensions other builds ship: generate_series, carray,
// sqlite_stmt, ...). A real table of the same name would shadow the
// function in SQLite; the JSON names are read as the function (see
// doc.go), the others refused.
func tableFunc(name string) int {
	// An ASCII name equals one in any letter case only when its length
	// and first letter do (a non-ASCII one is longer: the runes that fold
	// to ASCII letters, the Kelvin sign and the long s, take two or
	// three bytes).
	if len(name) > 7 && name[0]|0x20 == 'p' && strings.EqualFold(name[:7], "pragma_") {
		return tfRefused
	}
	if len(name) < 6 || len(name) >= len(tableFuncFirst) {
		return tfNone // fast path: no name below is shorter or longer
	}
	if c := name[0] | 0x20; c < 'a' || c > 'z' || tableFuncFirst[len(name)]&(1<<(c-'a')) == 0 {
		return tfNone // nor has this length and first letter
	}
	for _, f := range tableFuncs {
		if len(f.name) == len(name) && f.name[0] == name[0]|0x20 && strings.EqualFold(f.name, name) {
			return f.class
		}
	}
	return tfNone
}

var tableFuncs = []struct {
	name  string
	class int
}{
	{"json_each", tfJSON}, {"json_tree", tfJSON}, {"jsonb_each", tfJSON}, {"jsonb_tree", tfJSON},
	{"dbstat", tfRefused}, {"sqlite_dbpage", tfRefused}, {"sqlite_stmt", tfRefused}, {"generate_series", tfRefused},
	{"carray", tfRefused}, {"completion", tfRefused}, {"fts3tokenize", tfRefused}, {"fts5vocab", tfRefused},
}

// tableFuncFirst[n] has bit c-'a' set when a name of tableFuncs has n
// bytes and starts with the letter c.
var tableFuncFirst = func() (m [16]uint32) {
	for _, f := range tableFuncs {
		m[len(f.name)] |= 1 << (f.name[0] - 'a')
	}
	return m
}()

// isCTE reports whether an unqualified name is a CTE visible here or
// defined later in the same WITH (which addTable refuses).
func (p *parser) isCTE(name string) bool {
	return containsFold(p.cteVis, name) || containsFold(p.ctePend, name)
}

// namedTable adds the table named at nameTok (a CTE use unless write) to
// sc, with its optional alias and INDEXED BY / NOT INDEXED.
func (p *parser) namedTable(sc *scope, schema string, nameTok int, write bool) error {
	idx, err := p.addTable(schema, nameTok, write)
	if err != nil {
		return err
	}
	if err := p.alias(sc, idx, schema, p.toks[nameTok].val); err != nil {
		return err
	}
	if p.accept("INDEXED") {
		if err := p.expect("BY"); err != nil {
			return err
		}
		return p.expectKind(tIdent, "an index name")
	}
	if p.isKw("NOT") && p.peekN(1).kw() == "INDEXED" {
		p.pos += 2
	}
	return nil
}

// qualifiedName parses [schema.]name and returns the schema and the index
// of the name token.
func (p *parser) qualifiedName() (string, int, error) {
	t := p.peek()
	if t.kind != tIdent || (t.quote == 0 && notAlias[t.kw()]) {
		return "", 0, p.unexpected("expected a table name")
	}
	p.next()
	if p.peek().kind == tDot {
		p.next()
		if p.peek().kind != tIdent {
			return "", 0, p.unexpected("expected a table name after schema")
		}
		p.next()
		return t.val, p.pos - 1, nil
	}
	return "", p.pos - 1, nil
}

// addTable records a table reference (or a CTE use) and returns its index,
// or -1 when the name is a CTE.
func (p *parser) addTable(schema string, nameTok int, write bool) (int, error) {
	name := p.toks[nameTok].val
	if schema == "" {
		if containsFold(p.cteVis, name) {
			if write {
				return 0, parseErr("cannot write to CTE %q", name)
			}
			return -1, nil
		}
		if containsFold(p.ctePend, name) {
			return 0, parseErr("%q names a CTE defined later in the WITH clause", name)
		}
	}
	p.tables = append(p.tables, tableRef{tok: nameTok, t: sqlshadow.Table{Schema: schema, Name: name}, write: write})
	return len(p.tables) - 1, nil
}

// alias parses an optional [AS] alias and adds the source to sc. idx is the
// table of the item (-1 for CTEs, subqueries, functions); name is the name
// the item is visible by without an alias ("" for subqueries).
func (p *parser) alias(sc *scope, idx int, schema, name string) error {
	hasAS := p.accept("AS")
	t := p.peek()
	if t.kind == tIdent && (hasAS || t.quote != 0 || !notAlias[t.kw()]) {
		p.next()
		sc.sources = append(sc.sources, source{name: t.val, table: -1})
		return nil
	}
	if hasAS {
		return p.unexpected("expected an alias after AS")
	}
	if idx >= 0 {
		sc.sources = append(sc.sources, source{schema: schema, name: p.tables[idx].t.Name, table: idx})
	} else if name != "" {
		sc.sources = append(sc.sources, source{name: name, table: -1})
	}
	return nil
}

func (p *parser) insert() error {
	sc := &scope{}
	if p.accept("REPLACE") {
	} else {
		if err := p.expect("INSERT"); err != nil {
			return err
		}
		if err := p.orConflict(); err != nil {
			return err
		}
	}
	if err := p.expect("INTO"); err != nil {
		return err
	}
	schema, nameTok, err := p.qualifiedName()
	if err != nil {
		return err
	}
	idx, err := p.addTable(schema, nameTok, true)
	if err != nil {
		return err
	}
	if p.isKw("AS") {
		if err := p.alias(sc, idx, schema, ""); err != nil {
			return err
		}
	} else {
		sc.sources = append(sc.sources, source{schema: schema, name: p.toks[nameTok].val, table: idx})
	}
	if p.peek().kind == tLParen {
		if err := p.identList(); err != nil {
			return err
		}
	}
	if p.accept("DEFAULT") {
		if err := p.expect("VALUES"); err != nil {
			return err
		}
	} else if err := p.selectStmt(sc); err != nil {
		return err
	}
	for p.accept("ON") {
		if err := p.expect("CONFLICT"); err != nil {
			return err
		}
		up := &scope{parent: sc, sources: []source{{name: "excluded", table: -1}}}
		if p.peek().kind == tLParen {
			p.next()
			if err := p.paren(up); err != nil {
				return err
			}
			if err := p.optExpr("WHERE", up); err != nil {
				return err
			}
		}
		if err := p.expect("DO"); err != nil {
			return err
		}
		if p.accept("NOTHING") {
			continue
		}
		if err := p.expect("UPDATE"); err != nil {
			return err
		}
		if err := p.set(up); err != nil {
			return err
		}
		if err := p.optExpr("WHERE", up); err != nil {
			return err
		}
	}
	return p.returning(sc)
}

// orConflict parses the optional OR conflict-resolution of INSERT and
// UPDATE.
func (p *parser) orConflict() error {
	if !p.accept("OR") {
		return nil
	}
	if !p.isKw("ROLLBACK", "ABORT", "REPLACE", "FAIL", "IGNORE") {
		return p.unexpected("expected a conflict resolution")
	}
	p.next()
	return nil
}

func (p *parser) returning(sc *scope) error {
	if p.accept("RETURNING") {
		return p.exprList(sc)
	}
	return nil
}

func (p *parser) set(sc *scope) error {
	if err := p.expect("SET"); err != nil {
		return err
	}
	for {
		if p.peek().kind == tLParen {
			if err := p.identList(); err != nil {
				return err
			}
		} else if err := p.expectKind(tIdent, "a column name"); err != nil {
			return err
		}
		if t := p.peek(); t.kind != tOp || t.val != "=" {
			return p.unexpected("expected =")
		}
		p.next()
		if err := p.expr(sc); err != nil {
			return err
		}
		if p.peek().kind != tComma {
			return nil
		}
		p.next()
	}
}

func (p *parser) update() error {
	sc := &scope{}
	if err := p.expect("UPDATE"); err != nil {
		return err
	}
	if err := p.orConflict(); err != nil {
		return err
	}
	if err := p.target(sc); err != nil {
		return err
	}
	if err := p.set(sc); err != nil {
		return err
	}
	if p.accept("FROM") {
		if err := p.from(sc); err != nil {
			return err
		}
	}
	return p.whereReturning(sc)
}

func (p *parser) delete() error {
	sc := &scope{}
	if err := p.expect("DELETE"); err != nil {
		return err
	}
	if err := p.expect("FROM"); err != nil {
		return err
	}
	if err := p.target(sc); err != nil {
		return err
	}
	return p.whereReturning(sc)
}

// target parses the written table of UPDATE and DELETE.
func (p *parser) target(sc *scope) error {
	schema, nameTok, err := p.qualifiedName()
	if err != nil {
		return err
	}
	return p.namedTable(sc, schema, nameTok, true)
}

func (p *parser) whereReturning(sc *scope) error {
	if err := p.optExpr("WHERE", sc); err != nil {
		return err
	}
	if err := p.returning(sc); err != nil {
		return err
	}
	return p.orderLimit(sc)
}

// stopWords end an expression at parenthesis depth zero.
var stopWords = map[string]bool{
	"FROM": true, "WHERE": true, "GROUP": true, "HAVING": true, "ORDER": true, "LIMIT": true,
	"OFFSET": true, "UNION": true, "INTERSECT": true, "EXCEPT": true, "WINDOW": true,
	"RETURNING": true, "ON": true, "USING": true, "JOIN": true, "LEFT": true, "RIGHT": true,
	"FULL": true, "INNER": true, "CROSS": true, "NATURAL": true, "SET": true, "DO": true,
}

func (p *parser) exprList(sc *scope) error {
	for {
		if err := p.expr(sc); err != nil {
			return err
		}
		if p.peek().kind != tComma {
			return nil
		}
		p.next()
	}
}

// expr consumes one expression at depth zero. Only what can name a table is
// analysed: parenthesised subqueries, qualified column references and
// "IN table"; everything else is passed over.
func (p *parser) expr(sc *scope) error {
	for n := 0; ; n++ {
		switch t := p.peek(); {
		case t.kind == tEOF, t.kind == tSemi, t.kind == tComma, t.kind == tRParen, t.word != 0 && stopWords[t.kw()]:
			if n == 0 {
				return p.unexpected("expected an expression")
			}
			return nil
		}
		if err := p.item(sc); err != nil {
			return err
		}
	}
}

// item consumes one item of an expression: a term, a parenthesis, or any
// other token but a stray dot.
func (p *parser) item(sc *scope) error {
	switch p.peek().kind {
	case tIdent:
		return p.term(sc)
	case tLParen:
		p.next()
		return p.paren(sc)
	case tDot:
		return p.unexpected("unexpected .")
	}
	p.next()
	return nil
}

// paren consumes the inside of a parenthesis (the "(" already consumed) and
// the closing ")".
func (p *parser) paren(sc *scope) error {
	if p.isKw("SELECT", "VALUES", "WITH") {
		if err := p.selectStmt(&scope{parent: sc}); err != nil {
			return err
		}
		return p.expectKind(tRParen, ")")
	}
	for {
		t := p.peek()
		switch t.kind {
		case tEOF, tSemi:
			return p.unexpected("expected )")
		case tRParen:
			p.next()
			return nil
		}
		if err := p.item(sc); err != nil {
			return err
		}
	}
}

// notFuncs are keywords a "(" may follow in an expression without making
// a function call.
var notFuncs = map[string]bool{
	"IN": true, "EXISTS": true, "CAST": true, "NOT": true, "AND": true, "OR": true,
	"CASE": true, "WHEN": true, "THEN": true, "ELSE": true, "END": true, "IS": true,
	"BETWEEN": true, "OVER": true, "FILTER": true, "AS": true, "ON": true, "USING": true,
	"WHERE": true, "DISTINCT": true, "ALL": true, "ESCAPE": true, "COLLATE": true,
	"VALUES": true, "SET": true, "BY": true, "ISNULL": true, "NOTNULL": true,
}

// term consumes an identifier-led term: a keyword, a column, a qualified
// column, a function call, or "IN table".
func (p *parser) term(sc *scope) error {
	t := p.next()
	if t.quote == 0 {
		switch t.kw() {
		case "SELECT", "WITH", "VALUES", "FROM", "INSERT", "UPDATE", "DELETE", "REPLACE":
			p.pos--
			return p.unexpected("unexpected keyword")
		case "IN":
			if p.peek().kind == tIdent {
				schema, nameTok, err := p.qualifiedName()
				if err != nil {
					return err
				}
				if p.peek().kind == tLParen || (tableFunc(p.toks[nameTok].val) != tfNone && (schema != "" || !p.isCTE(p.toks[nameTok].val))) {
					return parseErr("table-valued function %q after IN is not supported", p.toks[nameTok].val)
				}
				_, err = p.addTable(schema, nameTok, false)
				return err
			}
			return nil
		}
	}
	if p.peek().kind == tLParen { // function call
		if !notFuncs[t.kw()] {
			p.funcs = append(p.funcs, p.pos-1)
		}
		p.next()
		return p.paren(sc)
	}
	if p.peek().kind != tDot {
		return nil
	}
	// qualified: a.b, a.*, a.b.c, a.b.*
	parts := []int{p.pos - 1}
	for p.peek().kind == tDot {
		p.next()
		n := p.peek()
		if n.kind == tIdent {
			p.next()
			parts = append(parts, p.pos-1)
			continue
		}
		if n.kind == tOp && n.val == "*" {
			p.next()
			parts = append(parts, -1)
			break
		}
		return p.unexpected("expected a column after .")
	}
	switch len(parts) {
	case 2:
		p.refs = append(p.refs, qref{sc: sc, tok: parts[0]})
	case 3:
		p.refs = append(p.refs, qref{sc: sc, tok: parts[1], schema: p.toks[parts[0]].val})
	default:
		return parseErr("qualified name with %d parts", len(parts))
	}
	if parts[len(parts)-1] == -1 && len(parts) == 3 {
		return parseErr("schema.table.* is not supported")
	}
	return nil
}

// resolve maps every qualified column reference to the table whose name it
// uses (renamed with it) or to an alias (left alone), in qref.table. An
// unknown qualifier fails closed.
func (p *parser) resolve() error {
	for i := range p.refs {
		r := &p.refs[i]
		q := p.toks[r.tok].val
		found := false
		for sc := r.sc; sc != nil && !found; sc = sc.parent {
			match := -2
			for _, s := range sc.sources {
				if !strings.EqualFold(s.name, q) {
					continue
				}
				if r.schema != "" && !strings.EqualFold(s.schema, r.schema) {
					continue
				}
				if match != -2 && match != s.table {
					return parseErr("ambiguous qualifier %q", q)
				}
				match = s.table
			}
			if match != -2 {
				found = true
				r.table = match
			}
		}
		if !found {
			return parseErr("qualifier %q names no table, alias or CTE in scope", q)
		}
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
