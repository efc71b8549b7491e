package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/shadowlane/shadowlane/dialects/mysql"
	"github.com/shadowlane/shadowlane/dialects/postgres"
	"github.com/shadowlane/shadowlane/dialects/sqlite"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

// schemaAction is one step of a shadow-schema plan: statements that create
// or fix a shadow object. Actions only ever create shadow objects or alter
// shadow objects; no statement of a plan names a production object as its
// target (production objects appear only as the source of LIKE).
type schemaAction struct {
	Table  string   // production table the action belongs to
	Object string   // the shadow object created or fixed
	Why    string   // what is missing or wrong, as `check` reports it
	SQL    []string // statements, in order
}

// schemaReview is an object the tool will not create: triggers and the
// functions they run, whose bodies may write production tables. The DDL is
// a starting point for a human to review and apply.
type schemaReview struct {
	Table, Object, Why string
	SQL                []string
}

// schemaPlan is what `shadow plan` prints and `shadow create` applies.
type schemaPlan struct {
	Dialect string
	Actions []schemaAction
	Reviews []schemaReview
	Notes   []string // information that needs no action
	// Tables is the list the plan covers: the requested tables plus the
	// tables their foreign keys reference (whose twins the shadow foreign
	// keys point at).
	Tables []string
}

func (p *schemaPlan) add(a schemaAction) { p.Actions = append(p.Actions, a) }

// addParent puts parent, a table that t's foreign keys reference, in the
// plan (the twins' keys point at its twin), with a note when it is new.
func (p *schemaPlan) addParent(set *tableSet, t, parent string) {
	if set.addTable(parent) {
		p.Notes = append(p.Notes, fmt.Sprintf("%s references %s: its twin is part of the plan", t, parent))
	}
}

// planner inspects one database and returns the plan for the twins of
// tables.
type planner func(ctx context.Context, db *sql.DB, tables []string, naming shadow.Naming) (*schemaPlan, error)

var planners = map[string]planner{"pgx": planPostgres, "mysql": planMySQL, "sqlite": planSQLite}

// writePlan prints p as an SQL script: actions as statements, reviews as
// comments the user must read before running them.
func writePlan(w io.Writer, p *schemaPlan) {
	if len(p.Actions) == 0 {
		fmt.Fprintf(w, "-- %s: shadow twins of %s are complete; nothing to do\n", p.Dialect, strings.Join(p.Tables, ", "))
	}
	for _, a := range p.Actions {
		fmt.Fprintf(w, "-- %s: %s\n", a.Object, a.Why)
		for _, s := range a.SQL {
			fmt.Fprintf(w, "%s;\n", s)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "-- note: %s\n", n)
	}
	for _, r := range p.Reviews {
		fmt.Fprintf(w, "-- REVIEW %s (%s): %s\n-- not applied by `shadow create`; check the body writes only shadow tables, then run:\n", r.Object, r.Table, r.Why)
		for _, s := range r.SQL {
			for _, line := range strings.Split(strings.TrimRight(s, ";\n "), "\n") {
				fmt.Fprintf(w, "--   %s\n", line)
			}
			fmt.Fprintln(w, "--   ;")
		}
	}
}

// viewRewrite renames, in a view's SELECT, every table of set to its twin
// with the runtime's own SQL rewriter dialect. It returns the rewritten
// SELECT and the production tables outside set the view still reads.
// viewReads returns the tables of set the view name reads (its query in
// the dialect d). A query d does not understand reads nothing and adds a
// note to check the view by hand.
func (p *schemaPlan) viewReads(d sqlshadow.Dialect, name, query string, set map[string]bool) []string {
	res, err := d.Rewrite(query, nil)
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("view %s not understood (%v): check by hand whether it needs a twin", name, err))
		return nil
	}
	var reads []string
	for _, u := range res.Tables {
		if set[u.Table.Name] {
			reads = append(reads, u.Table.Name)
		}
	}
	return reads
}

// seqDefaults reads the sequence defaults of the production table and,
// when it exists, of its twin (else the twin's are the production's, as
// its CREATE ... LIKE would copy them).
func seqDefaults[T any, S any](ctx context.Context, db *sql.DB, read func(context.Context, *sql.DB, T) (map[string]S, error), prod, twin T, twinOK bool) (map[string]S, map[string]S, error) {
	prodSeqs, err := read(ctx, db, prod)
	if err != nil || !twinOK {
		return prodSeqs, prodSeqs, err
	}
	twinSeqs, err := read(ctx, db, twin)
	return prodSeqs, twinSeqs, err
}

// viewTwin is one production view that reads tables of a plan, as a
// planner hands it to [schemaPlan.planViewTwin].
type viewTwin struct {
	table, view, twin string // the first plan table the view reads, the view, its twin
	query             string // the view's SELECT, in the planner's dialect
	def               string // the view's definition as the catalogue has it (shown in a review)
	hint              string // added to the review when the SELECT cannot be re-pointed
	// create is the twin's CREATE statement for its re-pointed SELECT.
	create func(body string) string
	// replace is the SQL that replaces an existing twin (nil: the CREATE).
	replace func(create string) []string
	// twinReads says whether the twin exists and which tables it reads
	// (nil: the planner cannot tell, and leaves the twin alone).
	twinReads func() (exists bool, reads []string, err error)
}

// planViewTwin plans the twin of v: a review when its SELECT cannot be
// re-pointed at the twins, a note naming the tables outside the plan the
// twin keeps reading in place, its CREATE when it is missing, and its
// replacement when the existing twin reads production tables of the plan.
func (p *schemaPlan) planViewTwin(d sqlshadow.Dialect, set *tableSet, naming shadow.Naming, v viewTwin) error {
	body, outside, err := viewRewrite(d, v.query, set.in, naming)
	if err != nil {
		p.Reviews = append(p.Reviews, schemaReview{Table: v.table, Object: v.twin, Why: fmt.Sprintf("view %s could not be re-pointed (%v)%s", v.view, err, v.hint), SQL: []string{v.def}})
		return nil
	}
	if len(outside) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("view %s also reads %s, which have no twin in the plan: %s reads them in place", v.view, strings.Join(outside, ", "), v.twin))
	}
	stmt := v.create(body)
	exists, reads, err := v.twinReads()
	if err != nil {
		return err
	}
	if !exists {
		p.add(schemaAction{Table: v.table, Object: v.twin, Why: "shadow view missing", SQL: []string{stmt}})
		return nil
	}
	var prodDeps []string
	for _, t := range reads {
		if set.in[t] {
			prodDeps = append(prodDeps, t)
		}
	}
	if len(prodDeps) > 0 {
		sqls := []string{stmt}
		if v.replace != nil {
			sqls = v.replace(stmt)
		}
		p.add(schemaAction{Table: v.table, Object: v.twin, Why: fmt.Sprintf("shadow view reads production table(s) %s", strings.Join(prodDeps, ", ")), SQL: sqls})
	}
	return nil
}

// rewrittenReads returns the tables a view definition reads (nil when d
// does not understand it).
func rewrittenReads(d sqlshadow.Dialect, def string) []string {
	res, err := d.Rewrite(def, nil)
	if err != nil {
		return nil
	}
	reads := make([]string, len(res.Tables))
	for i, u := range res.Tables {
		reads[i] = u.Table.Name
	}
	return reads
}

func viewRewrite(d sqlshadow.Dialect, query string, set map[string]bool, naming shadow.Naming) (string, []string, error) {
	var outside []string
	res, err := d.Rewrite(query, func(t sqlshadow.Table, _ bool) (string, error) {
		if set[t.Name] {
			return naming.Shadow(t.Name), nil
		}
		if !naming.IsShadow(t.Name) && !slices.Contains(outside, t.Name) {
			outside = append(outside, t.Name)
		}
		return t.Name, nil
	})
	if err != nil {
		return "", nil, err
	}
	return res.SQL, outside, nil
}

var (
	pgDialect     = postgres.New()
	mysqlDialect  = mysql.New()
	sqliteDialect = sqlite.New()
)

// tableSet tracks the tables a plan covers, growing with the parents that
// foreign keys reference.
type tableSet struct {
	list []string
	in   map[string]bool
}

func newTableSet(tables []string) *tableSet {
	s := &tableSet{in: map[string]bool{}}
	for _, t := range tables {
		s.addTable(t)
	}
	return s
}

func (s *tableSet) addTable(t string) bool {
	if s.in[t] {
		return false
	}
	s.in[t] = true
	s.list = append(s.list, t)
	return true
}

func qPG(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func qMy(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
func qLit(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// queryStrings runs q and returns its rows of string columns.
func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([][]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		return nil, err
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	return out, closeRows(rows)
}

// twinFKs says how a planner reads and writes the foreign keys of a
// production table and its twin: rows of its foreign-key query, the
// constraint name first.
type twinFKs struct {
	prod       [][]string // production's keys
	ref        int        // the column of a row naming the referenced table
	twinExists bool
	twin       func() ([][]string, error) // reads the twin's keys
	// key says what makes two keys the same, the referenced table named
	// ref (an error for a key it cannot read).
	key  func(fk []string, ref string) (string, error)
	drop func(fk []string) string                   // DDL dropping the twin's key fk
	add  func(fk []string, name, ref string) string // DDL giving the twin production's key fk as name, referencing ref
}

// twinForeignKeys puts the tables that table's keys reference in the plan
// (see addParent) and returns the step, to run once every table's twin is
// planned, that points the keys of table's twin at the parents' twins: it
// drops the twin's keys that reference a production table and adds
// production's keys the twin lacks.
func (p *schemaPlan) twinForeignKeys(set *tableSet, naming shadow.Naming, table, twin string, f twinFKs) func() error {
	for _, fk := range f.prod {
		p.addParent(set, table, fk[f.ref])
	}
	return func() error { return p.planTwinFKs(naming, table, twin, f) }
}

// planTwinFKs is the step of twinForeignKeys.
func (p *schemaPlan) planTwinFKs(naming shadow.Naming, table, twin string, f twinFKs) error {
	have := map[string]bool{}
	if f.twinExists {
		tfks, err := f.twin()
		if err != nil {
			return err
		}
		for _, fk := range tfks {
			if k, err := f.key(fk, fk[f.ref]); err == nil {
				have[k] = true
			}
			if !naming.IsShadow(fk[f.ref]) {
				p.add(schemaAction{Table: table, Object: fk[0], Why: fmt.Sprintf("foreign key %s of %s references production table %s", fk[0], twin, fk[f.ref]),
					SQL: []string{f.drop(fk)}})
			}
		}
	}
	for _, fk := range f.prod {
		ref := naming.Shadow(fk[f.ref])
		k, err := f.key(fk, ref)
		if err != nil {
			return err
		}
		if have[k] {
			continue
		}
		name := naming.Shadow(fk[0])
		p.add(schemaAction{Table: table, Object: name, Why: fmt.Sprintf("foreign key %s -> %s missing", name, ref), SQL: []string{f.add(fk, name, ref)}})
	}
	return nil
}

// missingTriggers returns the triggers of a production table that its
// twin lacks under their shadow names: the rows of prodQuery on prod, the
// trigger's name first; the twin's trigger names are those of twinQuery
// on twin, none when the twin does not exist (twinOK false).
func missingTriggers(ctx context.Context, db *sql.DB, naming shadow.Naming, twinOK bool, prodQuery string, prod any, twinQuery string, twin any) ([][]string, error) {
	trg, err := queryStrings(ctx, db, prodQuery, prod)
	if err != nil || !twinOK {
		return trg, err
	}
	names, err := queryColumn(ctx, db, twinQuery, twin)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(trg, func(tr []string) bool { return slices.Contains(names, naming.Shadow(tr[0])) }), nil
}

// queryColumn runs q and returns the first column of its rows, as
// queryStrings reads them.
func queryColumn(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := queryStrings(ctx, db, q, args...)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	return out, nil
}
