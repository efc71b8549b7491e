package sqlshadow

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Option configures a [Rewriter].
type Option func(*config)

type config struct {
	naming      *shadow.Naming
	tables      map[string]string
	readThrough []string
	guard       bool
	cacheSize   int
	funcs       map[string]string
	readOnly    []string
	database    []string
	dbMode      bool
	decisions   func() *shadow.Series
}

// WithNaming sets the naming that derives a shadow table from a production
// table (default [shadow.DefaultTable], suffix "_shadow", unless
// [WithTables] is given).
func WithNaming(n shadow.Naming) Option { return func(c *config) { c.naming = &n } }

// WithTables sets an explicit map from production table to shadow table.
// Keys are bare ("orders") or schema-qualified ("sales.orders") names;
// lookups try the exact name, then its lower-case form. When WithTables is
// given without [WithNaming], a table missing from the map has no shadow
// target and marked statements touching it are refused.
func WithTables(m map[string]string) Option {
	return func(c *config) {
		c.tables = make(map[string]string, len(m))
		for k, v := range m {
			c.tables[k] = v
		}
	}
}

// WithReadThrough lists production tables load-test statements may read
// (reference data). Writes to them from marked statements are refused with
// [shadow.ErrBlocked].
func WithReadThrough(tables ...string) Option {
	return func(c *config) { c.readThrough = append(c.readThrough, tables...) }
}

// WithFunctions maps functions to shadow twins: a marked statement calling
// a key ("f_bump" or "app.f_bump") calls the value instead (renamed like a
// table; the schema qualifier, if any, is kept). The twin must exist on the
// server and write only shadow tables; shadowlane cannot see inside it.
// Unmarked statements calling a twin are refused by the guard. Lookups try
// the exact name, then its lower-case form.
func WithFunctions(m map[string]string) Option {
	return func(c *config) {
		if c.funcs == nil {
			c.funcs = make(map[string]string, len(m))
		}
		for k, v := range m {
			c.funcs[k] = v
		}
	}
}

// WithReadOnlyFunctions declares functions ("f_price" or "app.f_price")
// that marked statements may call as they are: the application vouches
// that they change nothing (no writes, no session state). Built-ins known
// to be side-effect free need no declaration; every other function called
// by a marked statement is refused.
func WithReadOnlyFunctions(names ...string) Option {
	return func(c *config) { c.readOnly = append(c.readOnly, names...) }
}

// WithDatabase puts the Rewriter in database mode: load-test work runs on
// a separate shadow database (or PostgreSQL schema), so statements are not
// renamed, but marked statements are still parsed and refused when they
// reference a table qualified with any database/schema not listed here
// (system catalogs may be read), call a function not known to be
// side-effect free, change session state, hold executable comments, or
// are DDL or unparsable. List the shadow database (MySQL: "shop_shadow")
// or, for PostgreSQL, the schemas of the shadow database marked statements
// may name ("public", or the shadow schema of the search_path variant).
// With no names every qualified reference is refused. The unmarked guard
// is off in database mode (production statements never reach the shadow
// pool). Use it on the shadow pool: slsql.NewRouter.
func WithDatabase(schemas ...string) Option {
	return func(c *config) { c.dbMode = true; c.database = append(c.database, schemas...) }
}

// WithDecisions makes the Rewriter count its decisions in the series f
// returns (called per statement, so it may follow a Runtime set later):
// an adapter passes its Runtime's, func() *shadow.Series { return
// shadowlane.OrDefault(rt).Decisions() }. Without it decisions are counted
// in the default Runtime's series ([shadow.Default]).
func WithDecisions(f func() *shadow.Series) Option { return func(c *config) { c.decisions = f } }

// WithoutGuard turns the two-way guard off: unmarked statements are no
// longer checked for shadow tables. Only for migrations and tooling that
// manage shadow tables on purpose.
func WithoutGuard() Option { return func(c *config) { c.guard = false } }

// WithCacheSize bounds the number of statements whose decision is kept
// (default 4096, for marked statements and again for guarded unmarked
// ones). The cache evicts with CLOCK, an approximation of LRU, one entry
// at a time; hits take no lock. Zero or less keeps the default.
func WithCacheSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.cacheSize = n
		}
	}
}

// ErrConfig is wrapped by [New] when the options are inconsistent.
var ErrConfig = errors.New("shadowlane: invalid sql shadow configuration")

// Rewriter turns the statements of marked (load-test) contexts into
// statements on shadow tables, refuses what it cannot shadow, and guards
// unmarked statements against shadow tables. It is safe for concurrent use;
// rewrites and refusals are cached per statement text (a Rewriter serves one
// dialect, so the cache is keyed by dialect and text).
type Rewriter struct {
	d       Dialect
	store   string
	naming  *shadow.Naming
	tables  map[string]string // production -> shadow (exact keys)
	ltables map[string]string // lower-cased keys
	shadows map[string]bool   // lower-cased explicit shadow names
	read    map[string]bool   // lower-cased read-through names (bare and qualified)
	guard   bool
	dbMode  bool
	dbNames map[string]bool   // lower-cased schemas marked statements may qualify with (database mode)
	needles []string          // lower-case substrings whose absence proves a statement names no shadow table
	funcs   map[string]string // lower-cased function (bare or qualified) -> twin
	twins   map[string]bool   // lower-cased twin names
	roFuncs map[string]bool   // lower-cased read-only functions (bare or qualified)
	catalog func(Table) bool
	// decisions returns the series decisions are counted in (nil: the
	// default Runtime's).
	decisions func() *shadow.Series
	marked    cache
	guarded   cache
}

// New returns a Rewriter for dialect d. Without options every table is
// shadowed by [shadow.DefaultTable] and the guard is on.
func New(d Dialect, opts ...Option) (*Rewriter, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil dialect", ErrConfig)
	}
	c := config{guard: true, cacheSize: 4096}
	for _, o := range opts {
		o(&c)
	}
	if c.naming == nil && c.tables == nil {
		n := shadow.DefaultTable
		c.naming = &n
	}
	r := &Rewriter{d: d, store: d.Name(), naming: c.naming, guard: c.guard, decisions: c.decisions,
		tables: c.tables, ltables: map[string]string{}, shadows: map[string]bool{}, read: map[string]bool{}}
	if c.naming != nil {
		if err := c.naming.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if c.naming.Prefix != "" {
			r.needles = append(r.needles, strings.ToLower(c.naming.Prefix))
		} else {
			r.needles = append(r.needles, strings.ToLower(c.naming.Suffix))
		}
	}
	if err := r.addMap("table", c.tables, r.ltables, r.shadows); err != nil {
		return nil, err
	}
	r.funcs, r.twins, r.roFuncs = map[string]string{}, map[string]bool{}, map[string]bool{}
	if err := r.addMap("function", c.funcs, r.funcs, r.twins); err != nil {
		return nil, err
	}
	for _, f := range c.readOnly {
		if f == "" {
			return nil, fmt.Errorf("%w: empty read-only function", ErrConfig)
		}
		if r.twins[strings.ToLower(f)] {
			return nil, fmt.Errorf("%w: read-only function %q is a shadow twin", ErrConfig, f)
		}
		r.roFuncs[strings.ToLower(f)] = true
	}
	r.catalog = catalogOf(r.store)
	if c.dbMode {
		if c.tables != nil || len(c.readThrough) > 0 || len(c.funcs) > 0 {
			return nil, fmt.Errorf("%w: database mode renames nothing: WithTables, WithReadThrough and WithFunctions do not apply", ErrConfig)
		}
		r.dbMode, r.guard, r.naming, r.needles = true, false, nil, nil
		r.dbNames = map[string]bool{}
		for _, s := range c.database {
			if s == "" {
				return nil, fmt.Errorf("%w: empty database name", ErrConfig)
			}
			r.dbNames[strings.ToLower(s)] = true
		}
	}
	for _, t := range c.readThrough {
		if t == "" {
			return nil, fmt.Errorf("%w: empty read-through table", ErrConfig)
		}
		r.read[strings.ToLower(t)] = true
	}
	for t := range r.read {
		if r.isShadowName(Table{Name: t}) {
			return nil, fmt.Errorf("%w: read-through table %q is a shadow table", ErrConfig, t)
		}
	}
	r.marked.init(c.cacheSize)
	r.guarded.init(c.cacheSize)
	return r, nil
}

// addMap checks the entries of a map of production names to shadow names
// (what: "table" or "function") and indexes them by lower-cased name:
// byName maps a production name to its shadow, shadows holds the shadow
// names, and each shadow name becomes a needle.
func (r *Rewriter) addMap(what string, m map[string]string, byName map[string]string, shadows map[string]bool) error {
	for k, v := range m {
		if k == "" || v == "" || strings.EqualFold(k, v) {
			return fmt.Errorf("%w: %s map entry %q -> %q", ErrConfig, what, k, v)
		}
		byName[strings.ToLower(k)] = v
		shadows[strings.ToLower(v)] = true
		r.needles = append(r.needles, strings.ToLower(v))
	}
	return nil
}

// Dialect returns the dialect of r.
func (r *Rewriter) Dialect() Dialect { return r.d }

// Statement is what the adapters call for every statement: for a marked
// context it returns the shadow statement (or a refusal); for an unmarked one
// it returns query unchanged after the guard check.
func (r *Rewriter) Statement(ctx context.Context, query string) (string, error) {
	m := propagation.FromContext(ctx)
	if m.Run != "" {
		return r.Rewrite(m, query)
	}
	return query, r.Guard(query)
}

// Rewrite returns the shadow form of query for marked traffic m. Every table
// reference is renamed to its shadow table (tables already shadow are kept,
// read-through tables are read in place). It refuses with a [*shadow.Error]:
// DDL and statements the dialect cannot parse ([shadow.ErrUnsupported]),
// tables without a shadow target ([shadow.ErrNoShadowTarget]) and writes to
// read-through tables ([shadow.ErrBlocked]).
func (r *Rewriter) Rewrite(m propagation.Mark, query string) (string, error) {
	s := r.series()
	e := r.marked.get(query)
	if e == nil {
		e = r.marked.getOrCompute(query, func() *entry { return r.seal(r.rewrite(query), s) })
	}
	r.count(e, s, m.Run)
	if e.err != nil {
		err := *e.err
		err.Mark = m
		return "", &err
	}
	return e.sql, nil
}

// Guard checks an unmarked statement: it fails with
// [shadow.ErrShadowFromProduction] when the statement touches a shadow table.
// Statements that do not contain the shadow affix (or any explicit shadow
// name) pass after one case-insensitive substring scan, without parsing or
// allocating.
func (r *Rewriter) Guard(query string) error {
	if !r.guard || !r.mentionsShadow(query) {
		return nil
	}
	s := r.series()
	e := r.guarded.get(query)
	if e == nil {
		e = r.guarded.getOrCompute(query, func() *entry { return r.seal(r.check(query), s) })
	}
	r.count(e, s, "")
	if e.err != nil {
		err := *e.err
		return &err
	}
	return nil
}

func (r *Rewriter) mentionsShadow(q string) bool {
	for _, n := range r.needles {
		if containsFold(q, n) {
			return true
		}
	}
	return false
}

// entry is one cached decision. counters holds the handles of the
// decision series the statement counts into, resolved once when the entry
// is built, so a cache hit counts with one atomic add per table and no
// lock or map lookup.
type entry struct {
	sql      string
	err      *shadow.Error
	uses     []decision
	counters []shadow.Counter
	owner    *shadow.Series // the series counters belong to
}

// seal resolves the counter handles of e in s.
func (r *Rewriter) seal(e *entry, s *shadow.Series) *entry {
	e.owner = s
	if len(e.uses) > 0 {
		e.counters = make([]shadow.Counter, len(e.uses))
		for i, u := range e.uses {
			e.counters[i] = s.Counter(r.store, u.target, u.d)
		}
	}
	return e
}

// count counts e's decisions in s (the series in force), for run ("" for
// production work): with the cached handles when they belong to s.
func (r *Rewriter) count(e *entry, s *shadow.Series, run string) {
	if e.owner == s {
		for _, c := range e.counters {
			c.Inc()
		}
	} else {
		for _, u := range e.uses {
			s.Add("", r.store, u.target, "", u.d, 1)
		}
	}
	if run != "" {
		for _, u := range e.uses {
			s.AddRun(run, r.store, u.target, u.to, u.d, 1)
		}
	}
}

// Decisions returns the decision series in force (see [WithDecisions]):
// the one adapters also count the errors of marked statements in
// ([shadow.Series.RunError]).
func (r *Rewriter) Decisions() *shadow.Series { return r.series() }

// series is the decision series in force.
func (r *Rewriter) series() *shadow.Series {
	if r.decisions != nil {
		return r.decisions()
	}
	return shadow.Default()
}

type decision struct {
	target string
	d      shadow.Decision
	to     string // the shadow table (or twin) of a redirect, for the per-run evidence
}

func (r *Rewriter) refuse(target, rule string, err error) *entry {
	return &entry{err: &shadow.Error{Store: r.store, Target: target, Rule: rule, Err: err},
		uses: []decision{{target, shadow.Block, ""}}}
}

func (r *Rewriter) rewrite(query string) *entry {
	var uses []decision
	var refusal *entry
	rename := func(t Table, write bool) (string, error) {
		if r.dbMode {
			return r.databaseName(t, write, &uses, &refusal)
		}
		if r.isShadowName(t) {
			uses = append(uses, decision{t.String(), shadow.Redirect, t.String()})
			return t.Name, nil
		}
		if catalog := r.catalog(t); catalog || r.isReadThrough(t) {
			return r.readOnly(t, write, catalog, &uses, &refusal)
		}
		if s, ok := r.shadowName(t); ok {
			uses = append(uses, decision{t.String(), shadow.Redirect, s})
			return s, nil
		}
		refusal = r.refuse(t.String(), "no shadow table configured for "+t.String(), shadow.ErrNoShadowTarget)
		return "", shadow.ErrNoShadowTarget
	}
	funcs := func(f Func) (string, error) {
		if twin, ok := r.funcTwin(f); ok {
			uses = append(uses, decision{"function " + f.String(), shadow.Redirect, twin})
			return twin, nil
		}
		if f.Safe || r.isReadOnlyFunc(f) || r.isTwin(f) {
			return f.Name, nil
		}
		refusal = r.refuse("function "+f.String(), "function "+f.String()+" is not known to be side-effect free: map it to a shadow twin (sqlshadow.WithFunctions) or declare it read-only (sqlshadow.WithReadOnlyFunctions)", shadow.ErrUnsupported)
		return "", shadow.ErrUnsupported
	}
	var res Result
	var err error
	if fd, ok := r.d.(FuncDialect); ok {
		res, err = fd.RewriteFuncs(query, rename, funcs)
	} else {
		res, err = r.d.Rewrite(query, rename)
		if err == nil && refusal == nil {
			for _, f := range res.Funcs {
				if _, ok := r.funcTwin(f); ok {
					return r.refuse("function "+f.String(), "the "+r.store+" dialect cannot rename function calls to their twins", shadow.ErrUnsupported)
				}
				if _, ferr := funcs(f); ferr != nil {
					break
				}
			}
		}
	}
	if refusal != nil {
		return refusal
	}
	if err != nil {
		return r.refuse(clip(query), r.store+" parser: "+err.Error(), shadow.ErrUnsupported)
	}
	if len(res.ExecComments) > 0 {
		return r.refuse(clip(query), "executable comments (/*! ... */, /*M! ... */) run as code the rewrite cannot see: load-test statements may not contain them", shadow.ErrUnsupported)
	}
	if res.Kind == KindDDL {
		return r.refuse(firstTable(res), refusedKinds, shadow.ErrUnsupported)
	}
	if res.Session != "" {
		return r.refuse(clip(query), "statement changes session state ("+res.Session+") that later production statements on the same connection would inherit; only SET LOCAL / transaction-scoped settings are allowed for load-test traffic", shadow.ErrUnsupported)
	}
	// Belt and braces: the output must parse again, still be a plain read,
	// write or table-free statement, and name no production table other
	// than read-through reads.
	// The dialect's own verification re-parsed the output already when it
	// hands back that analysis: check it rather than parsing a third time.
	var check Result
	if res.Verified != nil && res.Verified.SQL == res.SQL {
		check = *res.Verified
	} else if check, err = r.d.Rewrite(res.SQL, nil); err != nil {
		return r.refuse(clip(query), "rewritten statement does not parse again: "+err.Error(), shadow.ErrUnsupported)
	}
	if check.Kind != res.Kind {
		return r.refuse(clip(query), "rewritten statement changed kind from "+res.Kind.String()+" to "+check.Kind.String(), shadow.ErrUnsupported)
	}
	if check.Session != "" || len(check.ExecComments) > 0 {
		return r.refuse(clip(query), "rewritten statement changes session state or holds executable comments", shadow.ErrUnsupported)
	}
	for _, u := range check.Tables {
		if r.dbMode && r.inShadowDatabase(u.Table) {
			continue
		}
		if r.isShadowName(u.Table) || (!u.Write && (r.isReadThrough(u.Table) || r.catalog(u.Table))) {
			continue
		}
		return r.refuse(u.Table.String(), "rewritten statement still names production table "+u.Table.String(), shadow.ErrUnsupported)
	}
	for _, f := range check.Funcs {
		if f.Safe || r.isReadOnlyFunc(f) || r.isTwin(f) {
			continue
		}
		return r.refuse("function "+f.String(), "rewritten statement still calls function "+f.String(), shadow.ErrUnsupported)
	}
	if r.dbMode {
		// Nothing is renamed: the statement runs as the application wrote
		// it, on the shadow database.
		return &entry{sql: query, uses: uses}
	}
	return &entry{sql: res.SQL, uses: uses}
}

// databaseName decides a table reference in database mode.
func (r *Rewriter) databaseName(t Table, write bool, uses *[]decision, refusal **entry) (string, error) {
	if t.Schema != "" && r.catalog(t) {
		return r.readOnly(t, write, true, uses, refusal)
	}
	if !r.inShadowDatabase(t) {
		*refusal = r.refuse(t.String(), "database mode: "+t.String()+" is qualified with "+t.Schema+", not the shadow database (sqlshadow.WithDatabase): load-test statements may name only tables of the shadow database", shadow.ErrBlocked)
		return "", shadow.ErrBlocked
	}
	*uses = append(*uses, decision{t.String(), shadow.Redirect, t.String()})
	return t.Name, nil
}

// readOnly decides for t, a table load-test traffic may read but never
// write (a system catalog, or a read-through table): a read keeps its
// name, a write is refused.
func (r *Rewriter) readOnly(t Table, write, catalog bool, uses *[]decision, refusal **entry) (string, error) {
	if write {
		what := "table " + t.String() + " is read-through"
		if catalog {
			what = "system catalog " + t.String()
		}
		*refusal = r.refuse(t.String(), what+": load-test traffic may read it, never write it", shadow.ErrBlocked)
		return "", shadow.ErrBlocked
	}
	*uses = append(*uses, decision{t.String(), shadow.ReadThrough, ""})
	return t.Name, nil
}

// inShadowDatabase reports whether t is unqualified or qualified with a
// database/schema listed by WithDatabase.
func (r *Rewriter) inShadowDatabase(t Table) bool {
	return t.Schema == "" || r.dbNames[strings.ToLower(t.Schema)]
}

// DatabaseMode reports whether r was built WithDatabase.
func (r *Rewriter) DatabaseMode() bool { return r.dbMode }

func (r *Rewriter) funcTwin(f Func) (string, bool) {
	if len(r.funcs) == 0 {
		return "", false
	}
	if f.Schema != "" {
		if t, ok := r.funcs[strings.ToLower(f.String())]; ok {
			return t, true
		}
	}
	t, ok := r.funcs[strings.ToLower(f.Name)]
	return t, ok
}

func (r *Rewriter) isTwin(f Func) bool {
	return len(r.twins) > 0 && (r.twins[strings.ToLower(f.Name)] || (f.Schema != "" && r.twins[strings.ToLower(f.String())]))
}

func (r *Rewriter) isReadOnlyFunc(f Func) bool {
	return len(r.roFuncs) > 0 && (r.roFuncs[strings.ToLower(f.Name)] || (f.Schema != "" && r.roFuncs[strings.ToLower(f.String())]))
}

// IsCatalog reports whether t is a system catalog relation of the named
// dialect ("mysql", "postgres", "sqlite"): information_schema,
// performance_schema, mysql and sys on MySQL/MariaDB; pg_catalog,
// information_schema and unqualified pg_* names on PostgreSQL; sqlite_schema
// and its kin on SQLite. Marked reads of catalogs pass unrenamed; marked
// writes to them are refused.
func IsCatalog(dialect string, t Table) bool { return catalogOf(dialect)(t) }

// catalogOf returns the system-catalog test of a dialect. Catalog reads by
// load-test statements pass unrenamed (there is no shadow catalog); writes
// to them are refused.
func catalogOf(dialect string) func(Table) bool {
	switch dialect {
	case "mysql":
		return func(t Table) bool {
			switch strings.ToLower(t.Schema) {
			case "information_schema", "performance_schema", "mysql", "sys":
				return true
			}
			return false
		}
	case "postgres":
		return func(t Table) bool {
			s := strings.ToLower(t.Schema)
			if i := strings.LastIndexByte(s, '.'); i >= 0 {
				s = s[i+1:] // catalog.schema
			}
			switch s {
			case "pg_catalog", "information_schema", "pg_toast":
				return true
			case "":
				// pg_catalog is searched first, so unqualified pg_* names
				// (pg_class, pg_stat_activity, ...) are catalog relations.
				return len(t.Name) > 3 && strings.EqualFold(t.Name[:3], "pg_")
			}
			return false
		}
	case "sqlite":
		return func(t Table) bool {
			switch strings.ToLower(t.Name) {
			case "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4":
				return true
			}
			return false
		}
	}
	return func(Table) bool { return false }
}

// refusedKinds is the rule of a KindDDL refusal.
const refusedKinds = "DDL, EXPLAIN and statements whose effects cannot be seen (CALL, COPY, LOAD DATA, SELECT INTO, PREPARE/EXECUTE, USE, SET GLOBAL, ...) are refused for load-test traffic"

func (r *Rewriter) check(query string) *entry {
	res, err := r.d.Rewrite(query, nil)
	if err != nil {
		return &entry{err: &shadow.Error{Store: r.store, Target: clip(query),
			Rule: "unmarked statement mentions the shadow affix and cannot be parsed", Err: shadow.ErrShadowFromProduction},
			uses: []decision{{"unparsed", shadow.Guard, ""}}}
	}
	if res.Kind == KindDDL && len(res.Tables) == 0 {
		// The dialect recognised the statement without naming its tables
		// (SQLite DDL): it mentions the shadow affix, so refuse.
		return &entry{err: &shadow.Error{Store: r.store, Target: clip(query),
			Rule: "unmarked DDL statement mentions the shadow affix; run shadow-table DDL through a rewriter built WithoutGuard", Err: shadow.ErrShadowFromProduction},
			uses: []decision{{"ddl", shadow.Guard, ""}}}
	}
	for _, u := range res.Tables {
		if r.isShadowName(u.Table) {
			return &entry{err: &shadow.Error{Store: r.store, Target: u.Table.String(),
				Rule: "unmarked (production) statement touches shadow table " + u.Table.String(), Err: shadow.ErrShadowFromProduction},
				uses: []decision{{u.Table.String(), shadow.Guard, ""}}}
		}
	}
	for _, f := range res.Funcs {
		if r.isTwin(f) {
			return &entry{err: &shadow.Error{Store: r.store, Target: "function " + f.String(),
				Rule: "unmarked (production) statement calls shadow twin function " + f.String(), Err: shadow.ErrShadowFromProduction},
				uses: []decision{{"function " + f.String(), shadow.Guard, ""}}}
		}
	}
	for _, c := range res.ExecComments {
		if r.mentionsShadow(c) {
			// The server runs the comment as code; the parser may not have
			// seen its tables. A shadow name inside is refused.
			return &entry{err: &shadow.Error{Store: r.store, Target: clip(query),
				Rule: "unmarked (production) statement names a shadow target inside an executable comment", Err: shadow.ErrShadowFromProduction},
				uses: []decision{{"executable comment", shadow.Guard, ""}}}
		}
	}
	return &entry{}
}

// ProductionTable returns the production table whose shadow is the bare
// name, and whether name is a shadow table at all (explicit maps first,
// then the naming; case-insensitive).
func (r *Rewriter) ProductionTable(name string) (string, bool) {
	for k, v := range r.tables {
		if strings.EqualFold(v, name) {
			return k, true
		}
	}
	if r.naming != nil && isShadowFold(*r.naming, name) {
		return name[len(r.naming.Prefix) : len(name)-len(r.naming.Suffix)], true
	}
	return "", false
}

// IsShadow reports whether t is a shadow table under the rules of r.
func (r *Rewriter) IsShadow(t Table) bool { return r.isShadowName(t) }

// ShadowTable returns the shadow table of production table t, or an error
// naming the rule when t has none or is read-through (the gorm adapter uses
// it to rename Statement.Table).
func (r *Rewriter) ShadowTable(t Table, write bool) (string, error) {
	if r.isShadowName(t) {
		return t.Name, nil
	}
	if r.isReadThrough(t) {
		if write {
			return "", shadow.Refuse(r.store, t.String(), "table "+t.String()+" is read-through: load-test traffic may read it, never write it", propagation.Mark{}, shadow.ErrBlocked)
		}
		return t.Name, nil
	}
	if s, ok := r.shadowName(t); ok {
		return s, nil
	}
	return "", shadow.Refuse(r.store, t.String(), "no shadow table configured for "+t.String(), propagation.Mark{}, shadow.ErrNoShadowTarget)
}

func (r *Rewriter) isShadowName(t Table) bool {
	if r.naming != nil && isShadowFold(*r.naming, t.Name) {
		return true
	}
	if len(r.shadows) > 0 {
		return r.shadows[strings.ToLower(t.Name)] || (t.Schema != "" && r.shadows[strings.ToLower(t.String())])
	}
	return false
}

func (r *Rewriter) isReadThrough(t Table) bool {
	if len(r.read) == 0 {
		return false
	}
	return r.read[strings.ToLower(t.Name)] || (t.Schema != "" && r.read[strings.ToLower(t.String())])
}

func (r *Rewriter) shadowName(t Table) (string, bool) {
	if r.tables != nil {
		if t.Schema != "" {
			if s, ok := r.lookup(t.String()); ok {
				return s, true
			}
		}
		if s, ok := r.lookup(t.Name); ok {
			return s, true
		}
	}
	if r.naming != nil {
		return r.naming.Shadow(t.Name), true
	}
	return "", false
}

func (r *Rewriter) lookup(k string) (string, bool) {
	if s, ok := r.tables[k]; ok {
		return s, true
	}
	s, ok := r.ltables[strings.ToLower(k)]
	return s, ok
}

func firstTable(res Result) string {
	if len(res.Tables) > 0 {
		return res.Tables[0].Table.String()
	}
	return ""
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// isShadowFold is shadow.Naming.IsShadow with ASCII case folding: SQL
// engines fold or ignore the case of identifiers, so ORDERS_SHADOW is a
// shadow table too.
func isShadowFold(n shadow.Naming, name string) bool {
	if n.Prefix == "" && n.Suffix == "" {
		return false
	}
	return len(name) >= len(n.Prefix)+len(n.Suffix) &&
		strings.EqualFold(name[:len(n.Prefix)], n.Prefix) &&
		strings.EqualFold(name[len(name)-len(n.Suffix):], n.Suffix)
}

// containsFold reports whether s contains the lower-case ASCII needle,
// ignoring ASCII case, without allocating. Candidates are found with
// strings.IndexByte (vectorised) for each case of the first byte.
func containsFold(s, needle string) bool {
	if len(needle) == 0 {
		return true
	}
	c0 := needle[0]
	if indexFoldFrom(s, needle, c0) {
		return true
	}
	if 'a' <= c0 && c0 <= 'z' {
		return indexFoldFrom(s, needle, c0-32)
	}
	return false
}

func indexFoldFrom(s, needle string, first byte) bool {
	n := len(needle)
	for i := 0; i+n <= len(s); {
		k := strings.IndexByte(s[i:len(s)-n+1], first)
		if k < 0 {
			return false
		}
		i += k
		j := 1
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 32
			}
			if c != needle[j] {
				break
			}
		}
		if j == n {
			return true
		}
		i++
	}
	return false
}

// Len returns the number of cached decisions (marked and guarded).
func (r *Rewriter) Len() int { return r.marked.len() + r.guarded.len() }
