package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/shadowlane/shadowlane/shadow"
)

// ddlToken is one token of SQLite DDL: an identifier (bare or quoted,
// name holds it unquoted), a string, a number, punctuation, space or a
// comment.
type ddlToken struct {
	text  string
	name  string // identifier value; "" for other tokens
	ident bool
}

// ddlTokens splits SQLite DDL into tokens; joining their texts gives s back.
func ddlTokens(s string) []ddlToken {
	var out []ddlToken
	for i := 0; i < len(s); {
		c := s[i]
		j := i + 1
		tok := ddlToken{}
		switch {
		case c == '-' && j < len(s) && s[j] == '-':
			for j < len(s) && s[j] != '\n' {
				j++
			}
		case c == '/' && j < len(s) && s[j] == '*':
			if k := strings.Index(s[j+1:], "*/"); k >= 0 {
				j = j + 1 + k + 2
			} else {
				j = len(s)
			}
		case c == '\'' || c == '"' || c == '`' || c == '[':
			end := c
			if c == '[' {
				end = ']'
			}
			for j < len(s) {
				if s[j] == end {
					if end != ']' && j+1 < len(s) && s[j+1] == end {
						j += 2
						continue
					}
					j++
					break
				}
				j++
			}
			if c != '\'' {
				inner := s[i+1 : max(j-1, i+1)]
				if end != ']' {
					inner = strings.ReplaceAll(inner, string(end)+string(end), string(end))
				}
				tok.ident, tok.name = true, inner
			}
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] >= 0x80) {
				j++
			}
			tok.ident, tok.name = true, s[i:j]
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
				j++
			}
		}
		tok.text = s[i:j]
		out = append(out, tok)
		i = j
	}
	return out
}

// kw reports whether t is the bare keyword k.
func (t ddlToken) kw(k string) bool {
	return t.ident && t.text == t.name && strings.EqualFold(t.name, k)
}

// nextSig returns the index of the next significant token at or after i.
func nextSig(toks []ddlToken, i int) int {
	for i < len(toks) && (strings.TrimSpace(toks[i].text) == "" || strings.HasPrefix(toks[i].text, "--") || strings.HasPrefix(toks[i].text, "/*")) {
		i++
	}
	return i
}

// sqliteRenameDDL rewrites a CREATE TABLE / INDEX / TRIGGER statement:
// the created object gets its shadow name and IF NOT EXISTS, the ON table
// (index, trigger) and every REFERENCES target their twins. refs collects
// the referenced production tables.
func sqliteRenameDDL(ddl string, naming shadow.Naming, refs *[]string) (string, error) {
	toks := ddlTokens(ddl)
	i := nextSig(toks, 0)
	if i >= len(toks) || !toks[i].kw("CREATE") {
		return "", fmt.Errorf("not a CREATE statement: %.40q", ddl)
	}
	// CREATE [TEMP|TEMPORARY] [UNIQUE] TABLE|INDEX|TRIGGER|VIEW [IF NOT EXISTS] name
	i = nextSig(toks, i+1)
	for i < len(toks) && (toks[i].kw("TEMP") || toks[i].kw("TEMPORARY") || toks[i].kw("UNIQUE")) {
		i = nextSig(toks, i+1)
	}
	if i >= len(toks) || !toks[i].ident {
		return "", fmt.Errorf("unexpected DDL: %.40q", ddl)
	}
	what := strings.ToUpper(toks[i].name)
	i = nextSig(toks, i+1)
	if i < len(toks) && toks[i].kw("IF") {
		i = nextSig(toks, nextSig(toks, nextSig(toks, i+1)+1)+1)
	} else if i < len(toks) {
		toks[i].text = "IF NOT EXISTS " + toks[i].text
	}
	if i >= len(toks) || !toks[i].ident {
		return "", fmt.Errorf("unexpected DDL: %.40q", ddl)
	}
	prefix := ""
	if strings.HasPrefix(toks[i].text, "IF NOT EXISTS ") {
		prefix = "IF NOT EXISTS "
	}
	toks[i].text = prefix + qPG(naming.Shadow(toks[i].name))
	onDone := what == "TABLE"
	for j := i + 1; j < len(toks); j++ {
		switch {
		case !onDone && toks[j].kw("ON"):
			k := nextSig(toks, j+1)
			if k < len(toks) && toks[k].ident {
				toks[k].text = qPG(naming.Shadow(toks[k].name))
				onDone = true
			}
		case what == "TABLE" && toks[j].kw("REFERENCES"):
			k := nextSig(toks, j+1)
			if k < len(toks) && toks[k].ident {
				if refs != nil {
					*refs = append(*refs, toks[k].name)
				}
				toks[k].text = qPG(naming.Shadow(toks[k].name))
			}
		}
	}
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.text)
	}
	return b.String(), nil
}

// sqliteViewBody returns the SELECT of a CREATE VIEW statement.
func sqliteViewBody(ddl string) (string, bool) {
	toks := ddlTokens(ddl)
	depth := 0
	for i, t := range toks {
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
		}
		if depth == 0 && t.kw("AS") {
			var b strings.Builder
			for _, u := range toks[i+1:] {
				b.WriteString(u.text)
			}
			return strings.TrimSpace(b.String()), true
		}
	}
	return "", false
}

func sqliteObject(ctx context.Context, db *sql.DB, typ, name string) (string, bool, error) {
	var s sql.NullString
	err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = ? AND name = ? COLLATE NOCASE`, typ, name).Scan(&s)
	if err == sql.ErrNoRows {
		return "", false, nil
	}
	return s.String, err == nil, err
}

func planSQLite(ctx context.Context, db *sql.DB, tables []string, naming shadow.Naming) (*schemaPlan, error) {
	p := &schemaPlan{Dialect: "sqlite"}
	set := newTableSet(tables)
	for i := 0; i < len(set.list); i++ {
		t := set.list[i]
		ddl, ok, err := sqliteObject(ctx, db, "table", t)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("sqlite: production table %q not found", t)
		}
		twin := naming.Shadow(t)
		var refs []string
		twinDDL, err := sqliteRenameDDL(ddl, naming, &refs)
		if err != nil {
			return nil, fmt.Errorf("sqlite: table %s: %w", t, err)
		}
		for _, r := range refs {
			p.addParent(set, t, r)
		}
		_, twinOK, err := sqliteObject(ctx, db, "table", twin)
		if err != nil {
			return nil, err
		}
		if !twinOK {
			// The twin is the production CREATE TABLE renamed: the same
			// columns, CHECK and UNIQUE constraints, foreign keys to the
			// twins; an INTEGER PRIMARY KEY (AUTOINCREMENT) numbers its own
			// rows (sqlite_sequence keeps one row per table).
			stmts := []string{twinDDL}
			idx, err := queryStrings(ctx, db, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, t)
			if err != nil {
				return nil, err
			}
			for _, x := range idx {
				s, err := sqliteRenameDDL(x[1], naming, nil)
				if err != nil {
					return nil, fmt.Errorf("sqlite: index %s: %w", x[0], err)
				}
				stmts = append(stmts, s)
			}
			p.add(schemaAction{Table: t, Object: twin, Why: "shadow table missing", SQL: stmts})
		} else {
			// Existing twin: foreign keys cannot be added in SQLite;
			// report the ones pointing at production or missing.
			prodFK, err := queryStrings(ctx, db, `SELECT "table", "from", coalesce("to", '') FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t)
			if err != nil {
				return nil, err
			}
			twinFK, err := queryStrings(ctx, db, `SELECT "table", "from", coalesce("to", '') FROM pragma_foreign_key_list(?) ORDER BY id, seq`, twin)
			if err != nil {
				return nil, err
			}
			have := map[string]bool{}
			for _, fk := range twinFK {
				have[strings.ToLower(strings.Join(fk, "|"))] = true
				if !naming.IsShadow(fk[0]) {
					p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: twin, Why: fmt.Sprintf("foreign key %s(%s) references production table %s; SQLite cannot alter it: drop %s and let `shadow create` recreate it", twin, fk[1], fk[0], twin),
						SQL: []string{"DROP TABLE " + qPG(twin), twinDDL}})
				}
			}
			for _, fk := range prodFK {
				want := []string{naming.Shadow(fk[0]), fk[1], fk[2]}
				if !have[strings.ToLower(strings.Join(want, "|"))] {
					p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: twin, Why: fmt.Sprintf("foreign key %s(%s) -> %s missing; SQLite cannot add it: drop %s and let `shadow create` recreate it", twin, fk[1], want[0], twin),
						SQL: []string{"DROP TABLE " + qPG(twin), twinDDL}})
				}
			}
			_, missing, err := missingIndexes(ctx, db, inspectSQLite, t, twin)
			if err != nil {
				return nil, err
			}
			idx, err := queryStrings(ctx, db, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, t)
			if err != nil {
				return nil, err
			}
			for _, x := range idx {
				cols, err := sqliteIndexColumns(ctx, db, x[0])
				if err != nil {
					return nil, err
				}
				var sig string
				for m := range missing {
					if missing[m] && strings.Contains(m, "("+strings.Join(cols, ", ")+")") && strings.HasPrefix(m, map[bool]string{true: "unique", false: "non-unique"}[strings.Contains(strings.ToUpper(x[1]), "UNIQUE")]) {
						sig = m
					}
				}
				if sig == "" {
					continue
				}
				missing[sig] = false
				s, err := sqliteRenameDDL(x[1], naming, nil)
				if err != nil {
					return nil, err
				}
				p.add(schemaAction{Table: t, Object: naming.Shadow(x[0]), Why: "index " + sig + " missing", SQL: []string{s}})
			}
		}
		trg, err := queryStrings(ctx, db, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? ORDER BY name`, t)
		if err != nil {
			return nil, err
		}
		for _, tr := range trg {
			name := naming.Shadow(tr[0])
			if _, ok, err := sqliteObject(ctx, db, "trigger", name); err != nil {
				return nil, err
			} else if ok {
				continue
			}
			s, err := sqliteRenameDDL(tr[1], naming, nil)
			if err != nil {
				s = tr[1]
			}
			p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: name,
				Why: fmt.Sprintf("trigger %s of %s is missing on the twin; its body may write production tables: rename every table it writes to its twin", tr[0], t),
				SQL: []string{s}})
		}
	}
	p.Tables = set.list
	views, err := queryStrings(ctx, db, `SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	for _, v := range views {
		byName[strings.ToLower(v[0])] = v[1]
	}
	for _, v := range views {
		if naming.IsShadow(v[0]) {
			continue
		}
		body, ok := sqliteViewBody(v[1])
		if !ok {
			continue
		}
		reads := p.viewReads(sqliteDialect, v[0], body, set.in)
		if len(reads) == 0 {
			continue
		}
		twin := naming.Shadow(v[0])
		err := p.planViewTwin(sqliteDialect, set, naming, viewTwin{table: reads[0], view: v[0], twin: twin, query: body, def: v[1],
			create:  func(body string) string { return fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s AS %s", qPG(twin), body) },
			replace: func(create string) []string { return []string{"DROP VIEW IF EXISTS " + qPG(twin), create} },
			twinReads: func() (bool, []string, error) {
				tdef, ok := byName[strings.ToLower(twin)]
				if !ok {
					return false, nil, nil
				}
				tb, _ := sqliteViewBody(tdef)
				return true, rewrittenReads(sqliteDialect, tb), nil
			}})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
