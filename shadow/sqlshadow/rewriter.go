package sqlshadow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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

// WithoutGuard turns the two-way guard off: unmarked statements are no
// longer checked for shadow tables. Only for migrations and tooling that
// manage shadow tables on purpose.
func WithoutGuard() Option { return func(c *config) { c.guard = false } }

// WithCacheSize bounds the number of rewritten statements kept (default
// 4096). Zero or less keeps the default.
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
	needles []string // lower-case substrings whose absence proves a statement names no shadow table
	marked  cache
	guarded cache
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
	r := &Rewriter{d: d, store: d.Name(), naming: c.naming, guard: c.guard,
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
	for k, v := range c.tables {
		if k == "" || v == "" || strings.EqualFold(k, v) {
			return nil, fmt.Errorf("%w: table map entry %q -> %q", ErrConfig, k, v)
		}
		r.ltables[strings.ToLower(k)] = v
		r.shadows[strings.ToLower(v)] = true
		r.needles = append(r.needles, strings.ToLower(v))
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
	e := r.marked.get(query)
	if e == nil {
		e = r.seal(r.rewrite(query))
		r.marked.put(query, e)
	}
	for _, c := range e.counters {
		c.Inc()
	}
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
	e := r.guarded.get(query)
	if e == nil {
		e = r.seal(r.check(query))
		r.guarded.put(query, e)
	}
	for _, c := range e.counters {
		c.Inc()
	}
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
}

// seal resolves the counter handles of e.
func (r *Rewriter) seal(e *entry) *entry {
	if len(e.uses) > 0 {
		e.counters = make([]shadow.Counter, len(e.uses))
		for i, u := range e.uses {
			e.counters[i] = shadow.CounterFor(r.store, u.target, u.d)
		}
	}
	return e
}

type decision struct {
	target string
	d      shadow.Decision
}

func (r *Rewriter) refuse(target, rule string, err error) *entry {
	return &entry{err: &shadow.Error{Store: r.store, Target: target, Rule: rule, Err: err},
		uses: []decision{{target, shadow.Block}}}
}

func (r *Rewriter) rewrite(query string) *entry {
	var uses []decision
	var refusal *entry
	rename := func(t Table, write bool) (string, error) {
		if r.isShadowName(t) {
			uses = append(uses, decision{t.String(), shadow.Redirect})
			return t.Name, nil
		}
		if r.isReadThrough(t) {
			if write {
				refusal = r.refuse(t.String(), "table "+t.String()+" is read-through: load-test traffic may read it, never write it", shadow.ErrBlocked)
				return "", shadow.ErrBlocked
			}
			uses = append(uses, decision{t.String(), shadow.ReadThrough})
			return t.Name, nil
		}
		if s, ok := r.shadowName(t); ok {
			uses = append(uses, decision{t.String(), shadow.Redirect})
			return s, nil
		}
		refusal = r.refuse(t.String(), "no shadow table configured for "+t.String(), shadow.ErrNoShadowTarget)
		return "", shadow.ErrNoShadowTarget
	}
	res, err := r.d.Rewrite(query, rename)
	if refusal != nil {
		return refusal
	}
	if err != nil {
		return r.refuse(clip(query), r.store+" parser: "+err.Error(), shadow.ErrUnsupported)
	}
	if res.Kind == KindDDL {
		return r.refuse(firstTable(res), refusedKinds, shadow.ErrUnsupported)
	}
	// Belt and braces: the output must parse again, still be a plain read,
	// write or table-free statement, and name no production table other
	// than read-through reads.
	check, err := r.d.Rewrite(res.SQL, nil)
	if err != nil {
		return r.refuse(clip(query), "rewritten statement does not parse again: "+err.Error(), shadow.ErrUnsupported)
	}
	if check.Kind != res.Kind {
		return r.refuse(clip(query), "rewritten statement changed kind from "+res.Kind.String()+" to "+check.Kind.String(), shadow.ErrUnsupported)
	}
	for _, u := range check.Tables {
		if r.isShadowName(u.Table) || (!u.Write && r.isReadThrough(u.Table)) {
			continue
		}
		return r.refuse(u.Table.String(), "rewritten statement still names production table "+u.Table.String(), shadow.ErrUnsupported)
	}
	return &entry{sql: res.SQL, uses: uses}
}

// refusedKinds is the rule of a KindDDL refusal.
const refusedKinds = "DDL, EXPLAIN and statements whose effects cannot be seen (CALL, COPY, LOAD DATA, SELECT INTO, PREPARE/EXECUTE, USE, SET GLOBAL, ...) are refused for load-test traffic"

func (r *Rewriter) check(query string) *entry {
	res, err := r.d.Rewrite(query, nil)
	if err != nil {
		return &entry{err: &shadow.Error{Store: r.store, Target: clip(query),
			Rule: "unmarked statement mentions the shadow affix and cannot be parsed", Err: shadow.ErrShadowFromProduction},
			uses: []decision{{"unparsed", shadow.Guard}}}
	}
	if res.Kind == KindDDL && len(res.Tables) == 0 {
		// The dialect recognised the statement without naming its tables
		// (SQLite DDL): it mentions the shadow affix, so refuse.
		return &entry{err: &shadow.Error{Store: r.store, Target: clip(query),
			Rule: "unmarked DDL statement mentions the shadow affix; run shadow-table DDL through a rewriter built WithoutGuard", Err: shadow.ErrShadowFromProduction},
			uses: []decision{{"ddl", shadow.Guard}}}
	}
	for _, u := range res.Tables {
		if r.isShadowName(u.Table) {
			return &entry{err: &shadow.Error{Store: r.store, Target: u.Table.String(),
				Rule: "unmarked (production) statement touches shadow table " + u.Table.String(), Err: shadow.ErrShadowFromProduction},
				uses: []decision{{u.Table.String(), shadow.Guard}}}
		}
	}
	return &entry{}
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

// cache is a bounded map of decisions. When full, it drops about half of
// its entries (map iteration order picks them) so a flood of distinct
// statements cannot grow memory without bound.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*entry
}

func (c *cache) init(max int) {
	c.max = max
	c.m = make(map[string]*entry)
}

func (c *cache) get(k string) *entry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	return e
}

func (c *cache) put(k string, e *entry) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		drop := len(c.m) / 2
		for k := range c.m {
			if drop <= 0 {
				break
			}
			delete(c.m, k)
			drop--
		}
	}
	c.m[k] = e
	c.mu.Unlock()
}

// Len returns the number of cached decisions (marked and guarded).
func (r *Rewriter) Len() int {
	r.marked.mu.RLock()
	n := len(r.marked.m)
	r.marked.mu.RUnlock()
	r.guarded.mu.RLock()
	n += len(r.guarded.m)
	r.guarded.mu.RUnlock()
	return n
}
