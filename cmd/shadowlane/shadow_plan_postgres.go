package main

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/shadowlane/shadowlane/shadow"
)

// pgRel resolves name on the search_path to (oid, schema) of a table
// (relkind r or p) or view (v); ok is false when there is none.
func pgRel(ctx context.Context, db *sql.DB, name string) (oid int64, schema, kind string, ok bool, err error) {
	var o sql.NullInt64
	if err = db.QueryRowContext(ctx, `SELECT to_regclass(quote_ident($1))::oid`, name).Scan(&o); err != nil || !o.Valid {
		return 0, "", "", false, err
	}
	err = db.QueryRowContext(ctx, `SELECT n.nspname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, o.Int64).Scan(&schema, &kind)
	return o.Int64, schema, kind, err == nil, err
}

// pgSeqDefaults maps each column of rel whose default draws from a
// sequence to that sequence (schema, name, oid).
func pgSeqDefaults(ctx context.Context, db *sql.DB, rel int64) (map[string][3]string, error) {
	rows, err := queryStrings(ctx, db, `SELECT a.attname, n.nspname, s.relname, s.oid::text
		FROM pg_attrdef d
		JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid AND dep.refclassid = 'pg_class'::regclass
		JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
		JOIN pg_namespace n ON n.oid = s.relnamespace
		WHERE d.adrelid = $1 AND a.attidentity = ''`, rel)
	if err != nil {
		return nil, err
	}
	out := map[string][3]string{}
	for _, r := range rows {
		out[r[0]] = [3]string{r[1], r[2], r[3]}
	}
	return out, nil
}

var pgFKRef = regexp.MustCompile(`^(.*?REFERENCES )((?:"(?:[^"]|"")+"|[^\s("]+)(?:\.(?:"(?:[^"]|"")+"|[^\s("]+))?)(\(.*)$`)

// pgForeignKeys returns the foreign keys of rel as (name, definition,
// referenced table name, referenced schema).
func pgForeignKeys(ctx context.Context, db *sql.DB, rel int64) ([][]string, error) {
	return queryStrings(ctx, db, `SELECT c.conname, pg_get_constraintdef(c.oid), r.relname, n.nspname
		FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace n ON n.oid = r.relnamespace
		WHERE c.contype = 'f' AND c.conrelid = $1 ORDER BY c.conname`, rel)
}

// fkKey normalises a foreign key definition to "cols REFERENCES <table>(...)"
// with the referenced table given as its bare name.
func fkKey(def, refName string) (string, bool) {
	m := pgFKRef.FindStringSubmatch(def)
	if m == nil {
		return "", false
	}
	return m[1] + refName + m[3], true
}

func planPostgres(ctx context.Context, db *sql.DB, tables []string, naming shadow.Naming) (*schemaPlan, error) {
	p := &schemaPlan{Dialect: "postgres"}
	set := newTableSet(tables)
	var fkLater []func() error
	var viewLater []func() error
	viewSeen := map[string]bool{}
	for i := 0; i < len(set.list); i++ {
		t := set.list[i]
		prod, schema, kind, ok, err := pgRel(ctx, db, t)
		if err != nil {
			return nil, err
		}
		if !ok || (kind != "r" && kind != "p") {
			return nil, fmt.Errorf("postgres: production table %q not found on the search_path", t)
		}
		twinName := naming.Shadow(t)
		qTwin := qPG(schema) + "." + qPG(twinName)
		twin, _, twinKind, twinOK, err := pgRel(ctx, db, twinName)
		if err != nil {
			return nil, err
		}
		if twinOK && twinKind != "r" && twinKind != "p" {
			return nil, fmt.Errorf("postgres: %s exists but is not a table (relkind %s)", twinName, twinKind)
		}
		if !twinOK {
			p.add(schemaAction{Table: t, Object: twinName, Why: "shadow table missing",
				SQL: []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (LIKE %s.%s INCLUDING ALL)", qTwin, qPG(schema), qPG(t))}})
		}
		// Sequences: LIKE ... INCLUDING ALL copies DEFAULT nextval('prod_seq'),
		// so the twin would draw ids from production's sequence. The twin
		// gets its own sequence, named as the SQL rewriter renames a
		// marked nextval('prod_seq').
		prodSeqs, twinSeqs, err := seqDefaults(ctx, db, pgSeqDefaults, prod, twin, twinOK)
		if err != nil {
			return nil, err
		}
		for _, c := range slices.Sorted(maps.Keys(prodSeqs)) {
			ps := prodSeqs[c]
			want := naming.Shadow(ps[1])
			ts, has := twinSeqs[c]
			if has && ts[1] == want && ts[0] == ps[0] {
				continue
			}
			why := fmt.Sprintf("column %s would draw from production sequence %s.%s (copied DEFAULT); the twin needs its own sequence %s", c, ps[0], ps[1], want)
			switch {
			case twinOK && has && ts[2] == ps[2]:
				why = fmt.Sprintf("column %s shares production sequence %s.%s: load-test inserts consume production ids; the twin needs its own sequence %s", c, ps[0], ps[1], want)
			case twinOK && has:
				why = fmt.Sprintf("column %s draws from %s.%s, not %s, the name the SQL rewriter gives a marked nextval('%s')", c, ts[0], ts[1], want, ps[1])
			case twinOK:
				why = fmt.Sprintf("column %s has no sequence default (production draws from %s.%s); the twin needs its own sequence %s", c, ps[0], ps[1], want)
			}
			var typ, start, inc, minv, maxv, cache string
			var cycle bool
			if err := db.QueryRowContext(ctx, `SELECT format_type(seqtypid, NULL), seqstart::text, seqincrement::text, seqmin::text, seqmax::text, seqcache::text, seqcycle
				FROM pg_sequence WHERE seqrelid = $1::oid`, ps[2]).Scan(&typ, &start, &inc, &minv, &maxv, &cache, &cycle); err != nil {
				return nil, fmt.Errorf("postgres: sequence %s: %w", ps[1], err)
			}
			cyc := "NO CYCLE"
			if cycle {
				cyc = "CYCLE"
			}
			qSeq := qPG(ps[0]) + "." + qPG(want)
			stmts := []string{
				fmt.Sprintf("CREATE SEQUENCE IF NOT EXISTS %s AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %s", qSeq, typ, inc, minv, maxv, start, cache, cyc),
				fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT nextval(%s::regclass)", qTwin, qPG(c), qLit(qSeq)),
				fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", qSeq, qTwin, qPG(c)),
			}
			if twinOK {
				// The twin may hold rows numbered from the old sequence:
				// continue after them.
				stmts = append(stmts, fmt.Sprintf("SELECT setval(%s, m, true) FROM (SELECT max(%s) AS m FROM %s) x WHERE m IS NOT NULL AND m >= %s", qLit(qSeq), qPG(c), qTwin, start))
			}
			p.add(schemaAction{Table: t, Object: want, Why: why, SQL: stmts})
		}
		// Foreign keys: LIKE copies none; the twin's point at the parents'
		// twins. Run after every table, so parents' twins exist.
		fks, err := pgForeignKeys(ctx, db, prod)
		if err != nil {
			return nil, err
		}
		fkLater = append(fkLater, p.twinForeignKeys(set, naming, t, twinName, twinFKs{prod: fks, ref: 2, twinExists: twinOK,
			twin: func() ([][]string, error) { return pgForeignKeys(ctx, db, twin) },
			key: func(fk []string, ref string) (string, error) {
				if k, ok := fkKey(fk[1], ref); ok {
					return k, nil
				}
				return "", fmt.Errorf("postgres: foreign key %s: cannot read %q", fk[0], fk[1])
			},
			drop: func(fk []string) string { return fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", qTwin, qPG(fk[0])) },
			add: func(fk []string, name, ref string) string {
				m := pgFKRef.FindStringSubmatch(fk[1]) // key read it
				return fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s%s.%s%s", qTwin, qPG(name), m[1], qPG(fk[3]), qPG(ref), m[3])
			}}))
		// Indexes of an existing twin: LIKE copied them for a new one.
		if twinOK {
			idx, err := queryStrings(ctx, db, `SELECT ic.relname, pg_get_indexdef(ix.indexrelid), ix.indisunique::text, ix.indisprimary::text,
				(SELECT count(*) FROM pg_constraint c WHERE c.conindid = ix.indexrelid)::text
				FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid WHERE ix.indrelid = $1 ORDER BY ic.relname`, prod)
			if err != nil {
				return nil, err
			}
			pi, missing, err := missingIndexes(ctx, db, inspectPostgres, t, twinName)
			if err != nil {
				return nil, err
			}
			for _, x := range idx {
				sig := pgIndexSig(pi, x)
				if !missing[sig] {
					continue
				}
				missing[sig] = false
				if x[4] != "0" {
					p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: x[0], Why: "constraint index " + sig + " missing in the twin; add the constraint to " + twinName})
					continue
				}
				def := pgIndexDef.ReplaceAllString(x[1], "${1}INDEX IF NOT EXISTS "+qPG(naming.Shadow(x[0]))+" ON "+qTwin+" USING")
				p.add(schemaAction{Table: t, Object: naming.Shadow(x[0]), Why: "index " + sig + " missing", SQL: []string{def}})
			}
		}
		// Triggers: reported for review, never copied.
		trg, err := missingTriggers(ctx, db, naming, twinOK,
			`SELECT t.tgname, pg_get_triggerdef(t.oid), p.proname, pg_get_functiondef(p.oid)
			FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = $1 AND NOT t.tgisinternal ORDER BY t.tgname`, prod,
			`SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal`, twin)
		if err != nil {
			return nil, err
		}
		for _, tr := range trg {
			name := naming.Shadow(tr[0])
			def := strings.Replace(tr[1], "TRIGGER "+tr[0]+" ", "TRIGGER "+qPG(name)+" ", 1)
			def = pgTrigOn.ReplaceAllString(def, " ON "+qPG(schema)+"."+qPG(twinName)+" ")
			p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: name,
				Why: fmt.Sprintf("trigger %s of %s is missing on the twin; it runs function %s, which may write production tables: give the twin a function that writes only twins", tr[0], t, tr[2]),
				SQL: []string{def, tr[3]}})
		}
		// Views over the table: a twin view reading the twins.
		views, err := queryStrings(ctx, db, `SELECT DISTINCT v.relname, n.nspname, pg_get_viewdef(v.oid)
			FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace n ON n.oid = v.relnamespace
			WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND v.oid <> $1 AND v.relkind = 'v'
			ORDER BY v.relname`, prod)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			if naming.IsShadow(v[0]) || viewSeen[v[1]+"."+v[0]] {
				continue
			}
			viewSeen[v[1]+"."+v[0]] = true
			viewLater = append(viewLater, func() error { return planPGView(ctx, db, p, set, naming, t, v[0], v[1], v[2]) })
		}
	}
	p.Tables = set.list
	for _, f := range append(fkLater, viewLater...) {
		if err := f(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var (
	pgIndexDef = regexp.MustCompile(`^(CREATE (?:UNIQUE )?)INDEX \S+ ON (?:ONLY )?\S+ USING`)
	pgTrigOn   = regexp.MustCompile(` ON \S+ `)
)

// pgIndexSig rebuilds inspectPostgres's signature for the index row x of
// pgIndexes: the index is found by matching its name's definition.
func pgIndexSig(pi tableInfo, x []string) string {
	// The signature carries kind, method and keys; recompute it the same
	// way inspectPostgres does by matching on the definition's key list.
	for _, s := range pi.indexes {
		kind := strings.SplitN(s, " ", 2)[0]
		if (kind == "primary") != (x[3] == "true") || (kind == "unique") != (x[2] == "true" && x[3] != "true") {
			continue
		}
		open := strings.Index(s, "(")
		if open < 0 {
			continue
		}
		keys := s[open:]
		if w := strings.Index(keys, ") where "); w >= 0 {
			keys = keys[:w+1]
		}
		if strings.Contains(x[1], keys) {
			return s
		}
	}
	return ""
}

// missingIndexes inspects table and its twin with inspect and returns
// table's information and the signatures of its indexes the twin lacks.
func missingIndexes(ctx context.Context, db *sql.DB, inspect func(context.Context, *sql.DB, string) (tableInfo, error), table, twin string) (tableInfo, map[string]bool, error) {
	pi, err := inspect(ctx, db, table)
	if err != nil {
		return pi, nil, err
	}
	ti, err := inspect(ctx, db, twin)
	if err != nil {
		return pi, nil, err
	}
	return pi, multisetMissing(pi.indexes, ti.indexes), nil
}

// multisetMissing returns the signatures of prod that sh lacks.
func multisetMissing(prod, sh []string) map[string]bool {
	out := map[string]bool{}
	for k, n := range multisetCount(prod, sh) {
		if n > 0 {
			out[k] = true
		}
	}
	return out
}

func planPGView(ctx context.Context, db *sql.DB, p *schemaPlan, set *tableSet, naming shadow.Naming, table, view, schema, def string) error {
	twin := naming.Shadow(view)
	return p.planViewTwin(pgDialect, set, naming, viewTwin{table: table, view: view, twin: twin,
		query: strings.TrimSuffix(strings.TrimSpace(def), ";"), def: def, hint: "; write its twin by hand",
		create: func(body string) string {
			return fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", qPG(schema), qPG(twin), body)
		},
		twinReads: func() (bool, []string, error) {
			oid, _, kind, ok, err := pgRel(ctx, db, twin)
			if err != nil || !ok {
				return false, nil, err
			}
			if kind != "v" {
				return false, nil, fmt.Errorf("postgres: %s exists but is not a view", twin)
			}
			reads, err := queryColumn(ctx, db, `SELECT DISTINCT c.relname FROM pg_rewrite r
				JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
				JOIN pg_class c ON c.oid = d.refobjid WHERE r.ev_class = $1 AND c.oid <> $1 ORDER BY 1`, oid)
			return true, reads, err
		}})
}
