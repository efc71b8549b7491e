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

// myTableType returns the TABLE_TYPE of name in the connection's database
// ("BASE TABLE", "VIEW", "SEQUENCE") or "" when there is none.
func myTableType(ctx context.Context, db *sql.DB, name string) (string, error) {
	var typ string
	err := db.QueryRowContext(ctx, `SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, name).Scan(&typ)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return typ, err
}

// MariaDB writes a sequence default as nextval(`db`.`seq`).
var myNextval = regexp.MustCompile("(?i)nextval\\((?:`(?:[^`]|``)+`\\.)?`((?:[^`]|``)+)`\\)")

func mySeqDefaults(ctx context.Context, db *sql.DB, table string) (map[string]string, error) {
	rows, err := queryStrings(ctx, db, `SELECT COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_DEFAULT IS NOT NULL`, table)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows {
		if m := myNextval.FindStringSubmatch(r[1]); m != nil {
			out[r[0]] = strings.ReplaceAll(m[1], "``", "`")
		}
	}
	return out, nil
}

// myForeignKeys returns name, referenced table, update rule, delete rule,
// columns and referenced columns of each foreign key of table.
func myForeignKeys(ctx context.Context, db *sql.DB, table string) ([][]string, error) {
	return queryStrings(ctx, db, `SELECT r.CONSTRAINT_NAME, r.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE,
			GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR '\n'),
			GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR '\n')
		FROM information_schema.REFERENTIAL_CONSTRAINTS r
		JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME AND k.TABLE_NAME = r.TABLE_NAME
		WHERE r.CONSTRAINT_SCHEMA = DATABASE() AND r.TABLE_NAME = ?
		GROUP BY r.CONSTRAINT_NAME, r.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE ORDER BY r.CONSTRAINT_NAME`, table)
}

func myCols(list string) string {
	parts := strings.Split(list, "\n")
	for i, p := range parts {
		parts[i] = qMy(p)
	}
	return strings.Join(parts, ", ")
}

func planMySQL(ctx context.Context, db *sql.DB, tables []string, naming shadow.Naming) (*schemaPlan, error) {
	p := &schemaPlan{Dialect: "mysql"}
	set := newTableSet(tables)
	var later []func() error
	for i := 0; i < len(set.list); i++ {
		t := set.list[i]
		typ, err := myTableType(ctx, db, t)
		if err != nil {
			return nil, err
		}
		if typ != "BASE TABLE" {
			return nil, fmt.Errorf("mysql: production table %q not found in the current database", t)
		}
		twin := naming.Shadow(t)
		twinTyp, err := myTableType(ctx, db, twin)
		if err != nil {
			return nil, err
		}
		twinOK := twinTyp != ""
		if twinOK && twinTyp != "BASE TABLE" {
			return nil, fmt.Errorf("mysql: %s exists but is a %s", twin, strings.ToLower(twinTyp))
		}
		if !twinOK {
			// LIKE copies columns, indexes, CHECK constraints and the
			// AUTO_INCREMENT attribute; the twin's counter is its own and
			// starts at 1. It copies no foreign keys and no triggers.
			p.add(schemaAction{Table: t, Object: twin, Why: "shadow table missing",
				SQL: []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s LIKE %s", qMy(twin), qMy(t))}})
		}
		// MariaDB sequences: DEFAULT NEXTVAL(prod_seq) is copied by LIKE.
		prodSeqs, twinSeqs, err := seqDefaults(ctx, db, mySeqDefaults, t, twin, twinOK)
		if err != nil {
			return nil, err
		}
		for _, c := range slices.Sorted(maps.Keys(prodSeqs)) {
			ps, want := prodSeqs[c], naming.Shadow(prodSeqs[c])
			if twinSeqs[c] == want {
				continue
			}
			why := fmt.Sprintf("column %s would draw from production sequence %s (copied DEFAULT); the twin needs its own sequence %s", c, ps, want)
			if twinOK && twinSeqs[c] == ps {
				why = fmt.Sprintf("column %s shares production sequence %s: load-test inserts consume production ids; the twin needs its own sequence %s", c, ps, want)
			}
			var start, minv, maxv, inc, cache string
			var cycle int
			if err := db.QueryRowContext(ctx, "SELECT start_value, minimum_value, maximum_value, increment, cache_size, cycle_option FROM "+qMy(ps)).Scan(&start, &minv, &maxv, &inc, &cache, &cycle); err != nil {
				return nil, fmt.Errorf("mysql: sequence %s: %w", ps, err)
			}
			cyc := "NOCYCLE"
			if cycle != 0 {
				cyc = "CYCLE"
			}
			stmts := []string{
				fmt.Sprintf("CREATE SEQUENCE IF NOT EXISTS %s START WITH %s MINVALUE %s MAXVALUE %s INCREMENT BY %s CACHE %s %s", qMy(want), start, minv, maxv, inc, cache, cyc),
				fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT (NEXTVAL(%s))", qMy(twin), qMy(c), qMy(want)),
			}
			p.add(schemaAction{Table: t, Object: want, Why: why, SQL: stmts})
		}
		fks, err := myForeignKeys(ctx, db, t)
		if err != nil {
			return nil, err
		}
		later = append(later, p.twinForeignKeys(set, naming, t, twin, twinFKs{prod: fks, ref: 1, twinExists: twinOK,
			twin: func() ([][]string, error) { return myForeignKeys(ctx, db, twin) },
			key:  func(fk []string, ref string) (string, error) { return ref + "|" + fk[4] + "|" + fk[5], nil },
			drop: func(fk []string) string {
				return fmt.Sprintf("ALTER TABLE %s DROP FOREIGN KEY %s", qMy(twin), qMy(fk[0]))
			},
			add: func(fk []string, name, ref string) string {
				return fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s) ON UPDATE %s ON DELETE %s",
					qMy(twin), qMy(name), myCols(fk[4]), qMy(ref), myCols(fk[5]), fk[2], fk[3])
			}}))
		trg, err := missingTriggers(ctx, db, naming, twinOK,
			`SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT FROM information_schema.TRIGGERS
			WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? ORDER BY TRIGGER_NAME`, t,
			`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ?`, twin)
		if err != nil {
			return nil, err
		}
		for _, tr := range trg {
			name := naming.Shadow(tr[0])
			p.Reviews = append(p.Reviews, schemaReview{Table: t, Object: name,
				Why: fmt.Sprintf("trigger %s of %s is missing on the twin; its body may write production tables: rename every table it writes to its twin", tr[0], t),
				SQL: []string{fmt.Sprintf("CREATE TRIGGER %s %s %s ON %s FOR EACH ROW %s", qMy(name), tr[1], tr[2], qMy(twin), tr[3])}})
		}
	}
	p.Tables = set.list
	for _, f := range later {
		if err := f(); err != nil {
			return nil, err
		}
	}
	// Views reading the tables.
	views, err := queryStrings(ctx, db, `SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME`)
	if err != nil {
		return nil, err
	}
	defs := map[string]string{}
	for _, v := range views {
		defs[v[0]] = v[1]
	}
	for _, v := range views {
		if naming.IsShadow(v[0]) {
			continue
		}
		reads := p.viewReads(mysqlDialect, v[0], v[1], set.in)
		if len(reads) == 0 {
			continue
		}
		twin := naming.Shadow(v[0])
		err := p.planViewTwin(mysqlDialect, set, naming, viewTwin{table: reads[0], view: v[0], twin: twin, query: v[1], def: v[1],
			hint:   "; write its twin by hand",
			create: func(body string) string { return fmt.Sprintf("CREATE OR REPLACE VIEW %s AS %s", qMy(twin), body) },
			twinReads: func() (bool, []string, error) {
				tdef, ok := defs[twin]
				return ok, rewrittenReads(mysqlDialect, tdef), nil
			}})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
