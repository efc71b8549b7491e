package shadowlane

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/internal/capmap"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// EvidenceConfig configures the per-run evidence a runtime keeps (what
// `shadowlane run --services` reads from GET /shadowlane/status?run=R).
//
//	evidence:
//	  runs: 16        # keep the counts of the last 16 runs (default)
type EvidenceConfig struct {
	// Runs is how many runs are kept; the run seen least recently is
	// forgotten first. 0 means the default, 16; at most 1024.
	Runs int `yaml:"runs"`
}

// DefaultEvidenceRuns is the number of runs kept when evidence.runs is 0.
const DefaultEvidenceRuns = 16

// MaxEvidenceRuns bounds evidence.runs.
const MaxEvidenceRuns = 1024

// maxRunLabels bounds the distinct entries, decisions and error reasons
// counted per run; further ones are counted under "other".
const maxRunLabels = 256

func (c EvidenceConfig) validate(bad func(field, format string, a ...any)) {
	if c.Runs < 0 || c.Runs > MaxEvidenceRuns {
		bad("evidence.runs", "%d: want 0 (default %d) to %d", c.Runs, DefaultEvidenceRuns, MaxEvidenceRuns)
	}
}

func evidenceRuns(n int) int {
	if n <= 0 {
		return DefaultEvidenceRuns
	}
	return min(n, MaxEvidenceRuns)
}

// initState creates the state a runtime owns (see the Runtime fields).
func (rt *Runtime) initState(runs int) {
	rt.runs = newRunBook(evidenceRuns(runs), rt.now)
	rt.decisions = shadow.NewSeries(rt.runs.decision).OnRunError(rt.runs.runError)
	rt.rstats = envtag.NewStats()
}

// Decisions returns the series the store adapters bound to this runtime
// count their shadow decisions in (Stats().Shadow, the
// shadowlane.shadow.decisions metric). Decisions made for a run are also
// counted in that run's evidence ([Runtime.RunStatus]).
func (rt *Runtime) Decisions() *shadow.Series { return rt.decisions }

// RunError counts an error of the load-test run ctx carries in the run's
// evidence (errors[].reason); nothing for production work. reason is a
// short, low-cardinality text ("payment timeout"), never a raw message
// (longer than 64 bytes, it is cut). The instrumented seams count their
// own errors of marked work (see the README's evidence section): entries
// their 5xx answers, panics and gRPC server-error codes; store adapters
// the errors of the store; bus adapters publish and handler errors.
func (rt *Runtime) RunError(ctx context.Context, reason string) {
	if run := propagation.FromContext(ctx).Run; run != "" {
		rt.runs.runError(run, reason, 1)
	}
}

// CountEntry counts one unit of marked work of the load-test run ctx
// carries at an entry that is not an inbound request: a message consumer
// counts each marked message it hands to its handler (entry
// "kafka:<topic>", route the consumer group). Nothing for production
// work. entry and route must be low-cardinality (configured names, never
// a key or an id). Inbound requests are counted by [Runtime.Admit].
func (rt *Runtime) CountEntry(ctx context.Context, entry, route string) {
	if run := propagation.FromContext(ctx).Run; run != "" {
		rt.runs.entry(run, entry, route, false)
	}
}

// RunStatus is the evidence a runtime keeps about one load-test run: the
// JSON of GET /shadowlane/status?run=R (contract:
// notes/contracts/evidence.md). Counts are cumulative within the process.
type RunStatus struct {
	Service   string         `json:"service"`
	Env       string         `json:"env"`
	Instance  string         `json:"instance"`
	Run       string         `json:"run"`
	Known     bool           `json:"known"`
	First     string         `json:"first"`
	Last      string         `json:"last"`
	Entries   []RunEntry     `json:"entries"`
	Decisions []RunDecision  `json:"decisions"`
	Errors    []RunErrorRows `json:"errors"`
}

// RunEntry counts the marked requests of a run at one entry and route.
type RunEntry struct {
	Entry   string `json:"entry"`
	Route   string `json:"route"`
	Marked  int64  `json:"marked"`
	Refused int64  `json:"refused"`
}

// RunDecision counts the shadow decisions of a run for one store and
// target. Decision is redirect, block, guard, mock or pass (a production
// target the config lets marked work use: a read-through table, an
// allow-listed host); To is the shadow target when the adapter knows it.
type RunDecision struct {
	Store    string `json:"store"`
	Target   string `json:"target"`
	Decision string `json:"decision"`
	To       string `json:"to"`
	N        int64  `json:"n"`
}

// RunErrorRows counts the errors of a run by reason.
type RunErrorRows struct {
	Reason string `json:"reason"`
	N      int64  `json:"n"`
}

// RunStatus returns what this runtime saw of run (Known false, zero
// counts, when it saw nothing or forgot it: only the last evidence.runs
// runs are kept).
func (rt *Runtime) RunStatus(run string) RunStatus {
	st := rt.st.Load()
	s := RunStatus{Service: st.cfg.Service, Env: st.cfg.Env, Instance: instanceID(), Run: run,
		Entries: []RunEntry{}, Decisions: []RunDecision{}, Errors: []RunErrorRows{}}
	r := rt.runs.lookup(run)
	if r == nil {
		return s
	}
	s.Known = true
	r.fill(&s)
	return s
}

// Runs returns the runs whose evidence is kept, the most recently seen
// first.
func (rt *Runtime) Runs() []string { return rt.runs.list() }

var instanceOnce = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return fmt.Sprintf("%s:%d", h, os.Getpid())
})

// instanceID is "host:pid", stable for the process.
func instanceID() string { return instanceOnce() }

// evidenceDecision is the contract's name of a shadow decision.
func evidenceDecision(d shadow.Decision) string {
	switch d {
	case shadow.ReadThrough:
		return "pass"
	case shadow.Filter:
		return "guard"
	}
	return d.String()
}

// ---- the book of runs ----

// runBook keeps the evidence of the last max runs; the run seen least
// recently is evicted first. A marked request costs one read-locked map
// look-up by run, then atomic adds; a request of the run counted last
// costs a string comparison instead of the look-up.
type runBook struct {
	now func() time.Time
	max atomic.Int64

	mu   sync.RWMutex
	runs map[string]*runRecord
	// last is the record get returned last, or nil: always one of runs
	// (stored under mu, cleared by evictLocked under mu).
	last atomic.Pointer[runRecord]
}

func newRunBook(max int, now func() time.Time) *runBook {
	if now == nil {
		now = time.Now
	}
	b := &runBook{now: now, runs: map[string]*runRecord{}}
	b.max.Store(int64(max))
	return b
}

// setMax changes the number of runs kept (config reload).
func (b *runBook) setMax(n int) {
	b.max.Store(int64(n))
	b.mu.Lock()
	for len(b.runs) > n {
		b.evictLocked()
	}
	b.mu.Unlock()
}

func (b *runBook) lookup(run string) *runRecord {
	if b == nil {
		return nil
	}
	b.mu.RLock()
	r := b.runs[run]
	b.mu.RUnlock()
	return r
}

// get returns the record of run, creating it (and evicting the run seen
// least recently when the book is full), and marks it seen now.
func (b *runBook) get(run string) *runRecord {
	now := b.now().UnixNano()
	if r := b.last.Load(); r != nil && r.run == run {
		r.seen.Store(now)
		return r
	}
	b.mu.RLock()
	r := b.runs[run]
	if r != nil {
		b.last.Store(r) // under mu: r cannot have been evicted yet
	}
	b.mu.RUnlock()
	if r == nil {
		b.mu.Lock()
		if r = b.runs[run]; r == nil {
			for int64(len(b.runs)) >= b.max.Load() && len(b.runs) > 0 {
				b.evictLocked()
			}
			r = &runRecord{run: run}
			r.first.Store(now)
			b.runs[run] = r
		}
		b.last.Store(r)
		b.mu.Unlock()
	}
	r.seen.Store(now)
	return r
}

// evictLocked forgets the run seen least recently; b.mu is held.
func (b *runBook) evictLocked() {
	var oldest *runRecord
	for _, r := range b.runs {
		if oldest == nil || r.seen.Load() < oldest.seen.Load() {
			oldest = r
		}
	}
	if oldest != nil {
		delete(b.runs, oldest.run)
		b.last.CompareAndSwap(oldest, nil)
	}
}

func (b *runBook) list() []string {
	b.mu.RLock()
	rs := make([]*runRecord, 0, len(b.runs))
	for _, r := range b.runs {
		rs = append(rs, r)
	}
	b.mu.RUnlock()
	slices.SortFunc(rs, func(a, c *runRecord) int {
		if d := c.seen.Load() - a.seen.Load(); d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a.run, c.run)
	})
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.run
	}
	return out
}

// records returns the kept records (metrics collection).
func (b *runBook) records() []*runRecord {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*runRecord, 0, len(b.runs))
	for _, r := range b.runs {
		out = append(out, r)
	}
	return out
}

// maxReason bounds the length of an error reason.
const maxReason = 64

// runError is the shadow.RunErrorFunc of the runtime's decision series.
func (b *runBook) runError(run, reason string, n int64) {
	if len(reason) > maxReason {
		n := maxReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	if reason == "" {
		reason = "error"
	}
	b.get(run).errorAdd(reason, n)
}

// decision is the shadow.RunFunc of the runtime's decision series.
func (b *runBook) decision(run, store, target, to string, d shadow.Decision, n int64) {
	b.get(run).decisionAdd(decisionKey{store, target, evidenceDecision(d), to}, n)
}

// entry counts one marked request of run at an entry (refused: turned away
// by the kill switch).
func (b *runBook) entry(run, entry, route string, refused bool) {
	c := b.get(run).entryCounter(entryKey{entry, route})
	if refused {
		c.refused.Add(1)
	} else {
		c.marked.Add(1)
	}
}

type entryKey struct{ entry, route string }

type entryCount struct{ marked, refused atomic.Int64 }

type decisionKey struct{ store, target, decision, to string }

// runRecord is the evidence of one run.
type runRecord struct {
	run         string
	first, seen atomic.Int64 // unix nanoseconds

	entries   capmap.Map[entryKey, entryCount]
	decisions capmap.Map[decisionKey, atomic.Int64]
	errors    capmap.Map[string, atomic.Int64]

	// recent remembers the counters of the first decision keys counted,
	// so that the few keys a hot path repeats (a cached SQL statement's
	// tables) skip the hashed map look-up. Filled in order, never
	// replaced; the counters are the map's own (never removed from it).
	recent [4]atomic.Pointer[decisionSlot]
}

type decisionSlot struct {
	k decisionKey
	c *atomic.Int64
}

func (r *runRecord) entryCounter(k entryKey) *entryCount {
	return r.entries.Get(k, maxRunLabels, func(entryKey) entryKey { return entryKey{"other", ""} })
}

func (r *runRecord) decisionAdd(k decisionKey, n int64) {
	free := -1
	for i := range r.recent {
		s := r.recent[i].Load()
		if s == nil {
			free = i
			break
		}
		if s.k == k {
			s.c.Add(n)
			return
		}
	}
	c := r.decisions.Get(k, maxRunLabels, func(k decisionKey) decisionKey {
		return decisionKey{k.store, "other", k.decision, ""}
	})
	if free >= 0 {
		// What Get returned is what it returns for k from now on (keys
		// are never removed; a key over the cap stays "other").
		s := &decisionSlot{k, c}
		for i := free; i < len(r.recent); i++ {
			if r.recent[i].CompareAndSwap(nil, s) {
				break
			}
		}
	}
	c.Add(n)
}

func (r *runRecord) errorAdd(reason string, n int64) {
	r.errors.Get(reason, maxRunLabels, otherLabel).Add(n)
}

// fill copies r's counts into s, sorted.
func (r *runRecord) fill(s *RunStatus) {
	s.First = time.Unix(0, r.first.Load()).UTC().Format(time.RFC3339Nano)
	s.Last = time.Unix(0, r.seen.Load()).UTC().Format(time.RFC3339Nano)
	for k, c := range r.entries.All() {
		s.Entries = append(s.Entries, RunEntry{Entry: k.entry, Route: k.route, Marked: c.marked.Load(), Refused: c.refused.Load()})
	}
	for k, c := range r.decisions.All() {
		s.Decisions = append(s.Decisions, RunDecision{Store: k.store, Target: k.target, Decision: k.decision, To: k.to, N: c.Load()})
	}
	for k, c := range r.errors.All() {
		s.Errors = append(s.Errors, RunErrorRows{Reason: k, N: c.Load()})
	}
	slices.SortFunc(s.Entries, func(a, b RunEntry) int {
		return strings.Compare(a.Entry+"\x00"+a.Route, b.Entry+"\x00"+b.Route)
	})
	slices.SortFunc(s.Decisions, func(a, b RunDecision) int {
		return strings.Compare(a.Store+"\x00"+a.Target+"\x00"+a.Decision+"\x00"+a.To, b.Store+"\x00"+b.Target+"\x00"+b.Decision+"\x00"+b.To)
	})
	slices.SortFunc(s.Errors, func(a, b RunErrorRows) int { return strings.Compare(a.Reason, b.Reason) })
}
