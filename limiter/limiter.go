package limiter

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Limiter holds rules and the resources they apply to. It is safe for
// concurrent use; the zero value is not usable, use [New].
type Limiter struct {
	clock   Clock // nil = system clock
	precise bool  // never read the coarse clock
	epoch   time.Time
	mono0   int64 // nanotime() at epoch, for the system clock

	listeners  []func(StateChange)
	alertFns   []func(Alert)
	alertQuiet int64
	alerts     alerts
	sysCfg     *SystemRule // from WithSystem
	sys        atomic.Pointer[system]
	sysErr     error // of the WithSystem rule
	maxRes     int

	fast sync.Map // name -> *Resource, for lock-free lookups

	idx atomic.Pointer[ruleIndex] // the rules in force, indexed

	// reload serialises rule changes and the recompiles that follow them;
	// no request path takes it.
	reload sync.Mutex

	// mu guards the resource table only: it is held for map operations,
	// never while rules are matched or checks compiled.
	mu        sync.Mutex
	resources map[string]*Resource
	overflow  *Resource

	// smu guards rule state (states) and alert states while a resource is
	// compiled; a compile holds it for the rules matching one resource.
	// Lock order: reload, then mu, then smu.
	smu    sync.Mutex
	states map[stateKey]*state
	gen    atomic.Uint64 // SetRules generation: marks the states a compile used
}

// Option configures a [Limiter].
type Option func(*Limiter)

// WithClock makes the limiter read time from c (see [ManualClock]).
func WithClock(c Clock) Option { return func(l *Limiter) { l.clock = c } }

// WithPreciseClock makes every Entry and Exit read the precise monotonic
// clock. By default they read a coarse clock (one atomic load, refreshed
// every millisecond by a goroutine that runs only while requests flow) and
// only rate checks with a burst tolerance under 50 ms read the precise one;
// see the package documentation ("Time").
func WithPreciseClock() Option { return func(l *Limiter) { l.precise = true } }

// WithStateListener registers fn to be called on every circuit-breaker
// state change, synchronously in the goroutine that caused it: keep it fast.
// It may be given several times.
func WithStateListener(fn func(StateChange)) Option {
	return func(l *Limiter) { l.listeners = append(l.listeners, fn) }
}

// WithMaxResources bounds the number of distinct resource handles (default
// 10000). Beyond it, [Limiter.Resource] returns one shared handle named
// "_other", so a caller that passes unbounded names (raw URLs) cannot
// exhaust memory; rules matching "_other" (e.g. "*") still apply to it.
func WithMaxResources(n int) Option { return func(l *Limiter) { l.maxRes = n } }

// New returns a limiter with no rules: every entry passes until
// [Limiter.SetRules] installs some.
func New(opts ...Option) *Limiter {
	l := &Limiter{maxRes: 10000, resources: map[string]*Resource{}, states: map[stateKey]*state{}}
	l.idx.Store(newIndex(nil))
	for _, o := range opts {
		o(l)
	}
	if l.clock != nil {
		l.epoch = l.clock.Now()
	} else {
		l.epoch, l.mono0 = time.Now(), nanotime()
	}
	if l.sysCfg != nil {
		l.sysErr = l.SetSystem(l.sysCfg)
	}
	return l
}

// now returns nanoseconds since the limiter's epoch.
func (l *Limiter) now() int64 {
	if l.clock == nil {
		return nanotime() - l.mono0
	}
	return int64(l.clock.Now().Sub(l.epoch))
}

// fastNow is now on the coarse clock (see coarseClock), in the same units.
func (l *Limiter) fastNow() int64 {
	if l.clock != nil || l.precise {
		return l.now()
	}
	// The coarse clock may lag the limiter's own creation by a tick.
	return max(0, coarse.read()-l.mono0)
}

func (l *Limiter) sleep(ctx context.Context, d time.Duration) error {
	if l.clock == nil {
		return sysSleep(ctx, d)
	}
	return l.clock.Sleep(ctx, d)
}

// Rules returns a copy of the rules in force.
func (l *Limiter) Rules() []Rule {
	return append([]Rule(nil), l.idx.Load().rules...)
}

// SetRules validates rules and, when all are valid, replaces the rules in
// force. On error nothing changes: the old rules stay and the error lists
// every problem, wrapping [ErrInvalidRule]. Rule state (buckets, in-flight
// counts, breaker state) carries over for rules whose name is unchanged.
//
// The rules are indexed once (exact names in a map, patterns in a trie),
// so each resource is compiled against only the rules that can match it;
// requests keep flowing on the old checks while the new ones are built.
func (l *Limiter) SetRules(rules []Rule) error {
	seen := make(map[string]int, len(rules))
	var errs []error
	for i := range rules {
		r := &rules[i]
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
			continue
		}
		if j, dup := seen[r.name()]; dup {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, &RuleError{Rule: r.name(), Field: "name", Msg: fmt.Sprintf("same name as rule %d", j)}))
		}
		seen[r.name()] = i
	}
	if len(errs) > 0 {
		return joinErrs(errs)
	}
	ix := newIndex(append([]Rule(nil), rules...))
	l.reload.Lock()
	defer l.reload.Unlock()
	l.idx.Store(ix)
	res := l.resourceList()
	gen := l.gen.Add(1)
	for _, r := range res {
		r.set.Store(l.compile(ix, r.name, gen))
	}
	// Drop the state of rules that no longer apply to a resource: state
	// this reload did not touch, unless its resource was made concurrently
	// (after res was listed) and its rule still exists.
	l.smu.Lock()
	for k, s := range l.states {
		if s.gen != gen && (!ix.named[k.rule] || l.listed(k.resource)) {
			delete(l.states, k)
		}
	}
	l.smu.Unlock()
	return nil
}

// listed reports whether a resource handle called name may exist ("_other"
// is the overflow handle's). It takes no lock: SetRules calls it holding
// l.smu, and l.mu is taken before l.smu elsewhere.
func (l *Limiter) listed(name string) bool {
	if _, ok := l.fast.Load(name); ok {
		return true
	}
	return name == "_other"
}

// resourceList returns every resource handle (the overflow one too).
func (l *Limiter) resourceList() []*Resource {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := make([]*Resource, 0, len(l.resources)+1)
	for _, r := range l.resources {
		res = append(res, r)
	}
	if l.overflow != nil {
		res = append(res, l.overflow)
	}
	return res
}

// Resource returns the handle for the resource called name, creating it on
// first use. Handles are cheap to keep and meant to be looked up once (at
// route registration, client construction) and kept: [Resource.Entry] does
// no map or pattern work. Name resources by route template or method
// ("GET /orders/:id", "/order.v1.Orders/Create", "redis:GET"), never by raw
// URL; see [WithMaxResources].
func (l *Limiter) Resource(name string) *Resource {
	if r, ok := l.fast.Load(name); ok {
		return r.(*Resource)
	}
	l.mu.Lock()
	if r, ok := l.resources[name]; ok {
		l.mu.Unlock()
		return r
	}
	if len(l.resources) >= l.maxRes {
		defer l.mu.Unlock()
		if l.overflow == nil {
			o := l.newResource("_other")
			o.set.Store(l.compile(l.idx.Load(), o.name, l.gen.Load()))
			l.overflow = o
		}
		return l.overflow
	}
	l.mu.Unlock()
	// Compile outside the resource table's lock, against the rules that
	// can match name.
	ix := l.idx.Load()
	r := l.newResource(name)
	r.set.Store(l.compile(ix, name, l.gen.Load()))
	l.mu.Lock()
	if old, ok := l.resources[name]; ok {
		l.mu.Unlock()
		return old
	}
	l.resources[name] = r
	l.fast.Store(name, r)
	l.mu.Unlock()
	if l.idx.Load() != ix {
		// Rules changed while r was compiled, maybe before SetRules
		// listed r: compile it again under the reload lock.
		l.reload.Lock()
		r.set.Store(l.compile(l.idx.Load(), r.name, l.gen.Load()))
		l.reload.Unlock()
	}
	return r
}

// Admit is Resource(resource).Entry(ctx): the seam framework adapters
// call per request when the resource name is known only then (a gRPC
// method, a gin route template). Looking up a known name takes no lock and
// does not allocate.
func (l *Limiter) Admit(ctx context.Context, resource string) (Token, error) {
	return l.Resource(resource).Entry(ctx)
}

// LimitFunc returns a check with the shape of go-grpc-middleware v2's
// ratelimit.Limiter.Limit: it admits one request of the resource named by
// resource(ctx) and exits it at once. It enforces rate, breaker-open and
// system rules; concurrency and breaker outcomes need [Limiter.Admit] with
// an Exit after the handler.
func (l *Limiter) LimitFunc(resource func(context.Context) string) func(context.Context) error {
	return func(ctx context.Context) error {
		tok, err := l.Admit(ctx, resource(ctx))
		if err != nil {
			return err
		}
		tok.Exit()
		return nil
	}
}

func (l *Limiter) newResource(name string) *Resource {
	r := &Resource{name: name, l: l}
	if len(l.alertFns) > 0 {
		l.smu.Lock()
		r.sysAlert = l.alertFor("system", name)
		l.smu.Unlock()
	}
	for i := range r.stats {
		r.stats[i].w = newWindow[field](metricSeconds, int64(time.Second))
		r.stats[i].w.fold = &r.stats[i].fold
	}
	return r
}

type stateKey struct {
	rule, resource string
	kind           kind
}

// compile builds the check list of the resource called name from the
// rules of ix that can match it. It takes l.smu for the rule state.
func (l *Limiter) compile(ix *ruleIndex, name string, gen uint64) *ruleSet {
	set := &ruleSet{}
	matched := ix.lookup(name)
	if len(matched) == 0 {
		return set
	}
	now := l.now()
	l.smu.Lock()
	defer l.smu.Unlock()
	for _, i := range matched {
		r := &ix.rules[i]
		base := check{rule: ix.names[i], dry: r.DryRun, env: r.Env}
		if len(l.alertFns) > 0 {
			base.alert = l.alertFor(base.rule, name)
		}
		switch r.Class {
		case ClassProduction:
			base.cls = clsProduction
		case ClassLoadTest:
			base.cls = clsLoadTest
		}
		share := r.share()
		if r.Breaker != nil {
			c := base
			c.kind = kindBreaker
			c.br = l.breakerState(stateKey{c.rule, name, kindBreaker}, r.Breaker, gen)
			c.limit = r.Breaker.Threshold
			set.checks = append(set.checks, c)
		}
		if r.Concurrency > 0 {
			c := base
			c.kind = kindConcurrency
			c.st = l.state(stateKey{c.rule, name, kindConcurrency}, gen)
			c.conc = int64(r.Concurrency)
			c.ltConc = shareOf(r.Concurrency, share)
			c.limit = float64(r.Concurrency)
			set.checks = append(set.checks, c)
		}
		if r.Param != nil {
			c := base
			c.kind = kindParam
			c.pkey = r.Param.Key
			c.ps = l.paramState(stateKey{c.rule, name, kindParam}, *r.Param, r.QPS, r.Burst, gen)
			c.limit = r.QPS
			if float64(r.burst())/r.QPS*float64(time.Second) < float64(coarseTolerance) {
				set.precise = true
			}
			set.params = true
			set.checks = append(set.checks, c)
		} else if r.QPS > 0 {
			c := base
			c.kind = kindQPS
			c.limit = r.QPS
			c.maxWait = int64(r.MaxWait)
			if r.WarmUp > 0 && r.warmUpMode() == WarmUpToken {
				c.tw = l.tokenWarmState(stateKey{c.rule, name, kindQPS}, r, share, gen)
				set.checks = append(set.checks, c)
				continue
			}
			c.st = l.state(stateKey{c.rule, name, kindQPS}, gen)
			burst := r.burst()
			c.burst = float64(burst)
			c.interval = int64(math.Max(1, float64(time.Second)/r.QPS))
			c.tau = c.interval * int64(burst)
			c.ltTau = c.tau
			if share < 1 {
				// Load-test traffic passes two buckets: the shared one, in
				// which it may use only its share of the burst (so it is
				// refused first as the limit nears), and its own, at its
				// share of the rate and of the burst. Neither rounds below
				// one request.
				c.ltBurst = shareOf(burst, share)
				c.ltTau = c.interval * c.ltBurst
				c.ltInterval = int64(math.Max(1, float64(time.Second)/(r.QPS*share)))
				c.ltOwnTau = c.ltInterval * c.ltBurst
				c.st.rescaleLT(c.ltInterval, now)
			}
			c.warm = int64(r.WarmUp)
			c.coldFactor = r.coldFactor()
			c.share = share
			c.st.rescale(c.interval, now)
			if c.maxWait > 0 || min(c.tau, c.ltTau) < coarseTolerance || (c.ltOwnTau > 0 && c.ltOwnTau < coarseTolerance) {
				set.precise = true
			}
			set.checks = append(set.checks, c)
		}
	}
	// Breakers first (cheap reads), then concurrency (reversible), then
	// rate checks (which reserve time).
	slices.SortStableFunc(set.checks, func(a, b check) int { return int(a.kind) - int(b.kind) })
	for _, c := range set.checks {
		if c.kind == kindConcurrency || c.kind == kindBreaker {
			set.exitN = len(set.checks)
			break
		}
	}
	return set
}

// shareOf is the load-test class's part of n: floor(n*share), never
// below one.
func shareOf(n int, share float64) int64 {
	return int64(math.Max(1, math.Floor(float64(n)*share)))
}

// The state helpers return the state of k when it can be kept for the
// rule's configuration, else a fresh one, and mark it used by generation
// gen. l.smu is held.

func (l *Limiter) state(k stateKey, gen uint64) *state {
	s, ok := l.states[k]
	if !ok || s.br != nil || s.ps != nil || s.tw != nil {
		s = &state{}
		s.tat.Store(math.MinInt64 / 2)
		s.ltTat.Store(math.MinInt64 / 2)
		l.states[k] = s
	}
	s.gen = gen
	return s
}

func (l *Limiter) tokenWarmState(k stateKey, r *Rule, share float64, gen uint64) *tokenWarm {
	s, ok := l.states[k]
	if !ok || s.tw == nil || !s.tw.sameConfig(r, share) {
		s = &state{tw: newTokenWarm(r, share)}
		l.states[k] = s
	}
	s.gen = gen
	return s.tw
}

func (l *Limiter) paramState(k stateKey, pr ParamRule, qps float64, burst int, gen uint64) *paramState {
	s, ok := l.states[k]
	if !ok || s.ps == nil || !s.ps.sameConfig(pr, qps, burst) {
		s = &state{ps: newParamState(pr, qps, burst)}
		l.states[k] = s
	}
	s.gen = gen
	return s.ps
}

func (l *Limiter) breakerState(k stateKey, br *BreakerRule, gen uint64) *breaker {
	s, ok := l.states[k]
	if !ok || s.br == nil || s.br.cfg != *br {
		s = &state{br: newBreaker(l, *br, k.resource, k.rule)}
		l.states[k] = s
	}
	s.gen = gen
	return s.br
}

type kind uint8

const (
	kindBreaker kind = iota + 1
	kindConcurrency
	kindQPS
	kindParam
)

const (
	clsAll        uint8 = 0
	clsProduction uint8 = 1
	clsLoadTest   uint8 = 2
)

var classNames = [...]string{"all", ClassProduction, ClassLoadTest}

// state is the mutable part of a check, kept across rule reloads.
type state struct {
	tat        atomic.Int64 // GCRA theoretical arrival time, ns since epoch
	ltTat      atomic.Int64 // the load-test class's own bucket (LoadTestShare < 1)
	warmStart  atomic.Int64 // start of the current (linear) warm-up
	inflight   atomic.Int64
	br         *breaker
	ps         *paramState
	tw         *tokenWarm
	gen        uint64 // the last compile generation that used it; guarded by Limiter.smu
	interval   int64  // emission interval tat was built with; guarded by Limiter.smu
	ltInterval int64  // emission interval ltTat was built with; guarded by Limiter.smu
}

// rescale carries a rate check's debt (requests admitted ahead of the
// sustained rate) across a change of rate: the same number of requests,
// now spaced by the new interval, so raising a limit takes effect at once
// and lowering it does not forgive the past.
func (s *state) rescale(interval, now int64) { rescaleTat(&s.tat, &s.interval, interval, now) }

// rescaleLT is rescale for the load-test bucket.
func (s *state) rescaleLT(interval, now int64) { rescaleTat(&s.ltTat, &s.ltInterval, interval, now) }

// rescaleTat moves tat, built with the emission interval *built, to
// interval.
func rescaleTat(tat *atomic.Int64, built *int64, interval, now int64) {
	if *built != 0 && *built != interval {
		if t := tat.Load(); t > now {
			debt := float64(t-now) / float64(*built)
			tat.CompareAndSwap(t, now+int64(debt*float64(interval)))
		}
	}
	*built = interval
}

type check struct {
	kind  kind
	cls   uint8  // clsAll or the one class the rule applies to
	env   string // "" or the one env the rule applies to
	dry   bool
	rule  string
	limit float64
	alert *alertState

	st   *state
	br   *breaker
	ps   *paramState
	pkey string

	conc, ltConc int64 // concurrency limits: all / load-test traffic

	interval   int64 // GCRA emission interval at full rate, ns
	tau        int64 // burst tolerance, ns
	ltTau      int64 // tolerance load-test traffic may use in the shared bucket
	burst      float64
	maxWait    int64
	warm       int64 // linear warm-up period
	coldFactor float64
	tw         *tokenWarm // token-bucket (Sentinel) warm-up, instead of GCRA

	// The load-test class's own bucket when LoadTestShare < 1 (else 0).
	share      float64
	ltBurst    int64
	ltInterval int64
	ltOwnTau   int64
}

type ruleSet struct {
	checks []check
	// exitN is len(checks) when a concurrency or breaker check needs
	// Exit, else 0: Exit of a rate-only set skips the loop.
	exitN   int
	precise bool // a rate check needs the precise clock
	params  bool // a check is a param rule
}

// Resource is a handle on one named resource. Keep it: Entry on a handle
// costs a few atomic operations and never allocates when it passes.
type Resource struct {
	name  string
	l     *Limiter
	set   atomic.Pointer[ruleSet]
	stats [2]classStats // production, load-test

	sysAlert *alertState // refusals by system protection; nil without alert funcs
}

// Name returns the resource's name.
func (r *Resource) Name() string { return r.name }

// Token is the ticket of one admitted request. Call [Token.Exit] or
// [Token.ExitErr] exactly once when the request is done; calling neither
// leaks a concurrency slot, calling both releases it twice. The zero Token
// (returned with an error) may be exited safely; it does nothing.
type Token struct {
	r       *Resource
	set     *ruleSet
	start   int64
	sys     *system   // system protection that admitted the request, if any
	entered uint64    // bit i: checks[i] holds a slot (concurrency, rate reservation or breaker probe)
	ext     *[]uint64 // the same for checks[64:], allocated only when used
	cls     uint8
}

// enter records that checks[i] holds a slot.
func (t *Token) enter(i int) {
	if i < 64 {
		t.entered |= 1 << i
		return
	}
	if t.ext == nil {
		b := make([]uint64, (len(t.set.checks)+63)/64)
		t.ext = &b
	}
	(*t.ext)[i/64] |= 1 << (i % 64)
}

// in reports whether checks[i] holds a slot.
func (t *Token) in(i int) bool {
	if i < 64 {
		return t.entered&(1<<i) != 0
	}
	return t.ext != nil && (*t.ext)[i/64]&(1<<(i%64)) != 0
}

// Entry admits or refuses one request of the traffic class carried by ctx
// (see [propagation.FromContext]). It returns a *[BlockError] when a rule
// refuses; when a rate rule has MaxWait it may first wait for a slot (until
// ctx is done). On success the caller must call Exit or ExitErr on the token.
func (r *Resource) Entry(ctx context.Context) (Token, error) { return r.entry(ctx, nil) }

func (r *Resource) entry(ctx context.Context, p Params) (Token, error) {
	m := propagation.FromContext(ctx)
	cls := clsProduction
	if m.Run != "" {
		cls = clsLoadTest
	}
	l := r.l
	set := r.set.Load()
	// start (coarse) times the request for metrics; now (precise only when
	// a rate check needs it) decides.
	start := l.fastNow()
	now := start
	coarseNow := l.clock == nil && !l.precise // now may lag the precise clock
	if set.precise && coarseNow {
		now, coarseNow = max(start, nanotime()-l.mono0), false
	}
	t := Token{r: r, set: set, start: start, cls: cls}
	if sys := l.sys.Load(); sys != nil {
		t.sys = sys
		if err := sys.admit(r, cls, now); err != nil {
			r.stats[cls-1].block(now, ReasonSystem)
			l.blocked(r.sysAlert, now, err)
			return Token{}, err
		}
	}
	// From here on, a refusal must call t.release.
	var wait int64
	for i := range set.checks {
		c := &set.checks[i]
		if (c.cls != clsAll && c.cls != cls) || (c.env != "" && c.env != m.Env) {
			continue
		}
		var be *BlockError
		switch c.kind {
		case kindBreaker:
			probe, err := c.br.allow(now)
			if err != nil {
				be = err
			} else if probe {
				t.enter(i)
			}
		case kindConcurrency:
			limit := c.conc
			if cls == clsLoadTest {
				limit = c.ltConc
			}
			n := c.st.inflight.Add(1)
			if n > limit && !c.dry {
				c.st.inflight.Add(-1)
				be = &BlockError{Reason: ReasonConcurrency, Limit: c.limit, Value: float64(n)}
			} else {
				if n > limit {
					r.stats[cls-1].dryRun(now)
				}
				t.enter(i)
			}
		case kindQPS:
			w, ok := c.take(now, cls)
			if !ok && coarseNow {
				// A lagging clock only ever refuses too much: decide a
				// refusal again on the precise clock.
				now, coarseNow = max(now, nanotime()-l.mono0), false
				w, ok = c.take(now, cls)
			}
			if !ok {
				if c.dry {
					r.stats[cls-1].dryRun(now)
					continue
				}
				be = &BlockError{Reason: ReasonQPS, Limit: c.limit, Value: float64(r.passedThisSecond(now) + 1), RetryAfter: time.Duration(w)}
				if c.maxWait > 0 {
					be.Reason = ReasonQueue
				}
			} else {
				t.enter(i)
				wait = max(wait, w)
			}
		case kindParam:
			if p == nil {
				continue
			}
			v := p.Param(c.pkey)
			if v == "" {
				continue
			}
			e := c.ps.get(v)
			w, ok := e.take(now)
			if !ok && coarseNow {
				now, coarseNow = max(now, nanotime()-l.mono0), false
				w, ok = e.take(now)
			}
			if !ok {
				be = &BlockError{Reason: ReasonParam, Limit: e.limit, Value: e.limit + 1, RetryAfter: time.Duration(w), Param: v}
			}
		}
		if be != nil {
			if c.dry {
				r.stats[cls-1].dryRun(now)
				continue
			}
			t.release(i)
			be.Resource, be.Rule, be.Class = r.name, c.rule, classNames[cls]
			r.stats[cls-1].block(now, be.Reason)
			l.blocked(c.alert, now, be)
			return Token{}, be
		}
	}
	if wait > 0 {
		if err := l.sleep(ctx, time.Duration(wait)); err != nil {
			t.release(len(set.checks))
			r.stats[cls-1].block(now, ReasonQueue)
			return Token{}, &BlockError{Resource: r.name, Rule: "queue", Reason: ReasonQueue, Class: classNames[cls], Value: float64(wait) / 1e9}
		}
		t.start = l.fastNow()
	}
	r.stats[cls-1].pass(t.start)
	return t, nil
}

// release undoes the slots taken by checks[0:n] (and system protection)
// after a refusal, giving back rate reservations too.
func (t *Token) release(n int) {
	if t.sys != nil {
		t.sys.inflight.Add(-1)
	}
	for i := range n {
		c := &t.set.checks[i]
		if t.in(i) {
			switch c.kind {
			case kindConcurrency:
				c.st.inflight.Add(-1)
			case kindBreaker:
				c.br.cancelProbe()
			case kindQPS:
				c.unTake(t.cls, t.start)
			}
		}
	}
}

// Exit records a successful completion and releases the token's slots.
func (t Token) Exit() { t.ExitErr(nil) }

// ExitErr records the completion of the request with its outcome (a non-nil
// err counts as an error for breakers and metrics) and releases the token's
// slots.
func (t Token) ExitErr(err error) {
	if t.r == nil {
		return
	}
	now := t.r.l.fastNow()
	rt := max(0, now-t.start)
	for i := range t.set.exitN {
		c := &t.set.checks[i]
		switch c.kind {
		case kindConcurrency:
			if t.in(i) {
				c.st.inflight.Add(-1)
			}
		case kindBreaker:
			c.br.done(now, rt, t.start, err != nil, t.in(i))
		}
	}
	t.r.stats[t.cls-1].exit(now, rt, err != nil)
	if t.sys != nil {
		t.sys.exit(now, rt)
	}
}

// take runs the rate check at now. It returns (wait, true) when the
// request may pass after waiting wait ns (0 = now), or (retryAfter, false).
func (c *check) take(now int64, cls uint8) (int64, bool) {
	if c.tw != nil {
		return c.tw.take(now, cls)
	}
	T, tau := c.interval, c.tau
	ltT, ltTau := c.ltInterval, c.ltOwnTau
	if cls == clsLoadTest {
		tau = c.ltTau
	}
	if c.warm > 0 {
		T, tau, ltT, ltTau = c.warmInterval(now, cls)
	}
	w, ok := c.gcra(&c.st.tat, now, T, tau)
	if !ok || cls != clsLoadTest || ltT == 0 {
		return w, ok
	}
	w2, ok := c.gcra(&c.st.ltTat, now, ltT, ltTau)
	if !ok {
		c.st.tat.Add(-T)
		return w2, false
	}
	return max(w, w2), true
}

// unTake gives back a rate reservation after a later check refused.
func (c *check) unTake(cls uint8, start int64) {
	if c.tw != nil {
		c.tw.untake(start, cls)
		return
	}
	c.st.tat.Add(-c.interval)
	if cls == clsLoadTest && c.ltInterval > 0 {
		c.st.ltTat.Add(-c.ltInterval)
	}
}

// gcra reserves one emission interval T in the bucket *tat with tolerance
// tau.
func (c *check) gcra(tat *atomic.Int64, now, T, tau int64) (int64, bool) {
	for {
		old := tat.Load()
		newTat := max(old, now) + T
		wait := newTat - tau - now
		if wait > 0 && (wait > c.maxWait || c.dry) {
			return wait, false
		}
		if tat.CompareAndSwap(old, newTat) {
			return max(wait, 0), true
		}
	}
}

// warmInterval returns the emission intervals and tolerances (shared
// bucket, load-test bucket) during a linear warm-up.
func (c *check) warmInterval(now int64, cls uint8) (T, tau, ltT, ltTau int64) {
	st := c.st
	ws := st.warmStart.Load()
	if tat := st.tat.Load(); now-tat > c.warm {
		// Idle for a whole warm-up period: cold again.
		if ws < tat || ws == 0 {
			st.warmStart.CompareAndSwap(ws, now)
		}
		ws = st.warmStart.Load()
	}
	el := now - ws
	if el >= c.warm || el < 0 {
		if cls == clsLoadTest {
			return c.interval, c.ltTau, c.ltInterval, c.ltOwnTau
		}
		return c.interval, c.tau, 0, 0
	}
	full := float64(time.Second) / float64(c.interval)
	cold := full / c.coldFactor
	rate := cold + (full-cold)*float64(el)/float64(c.warm)
	T = int64(float64(time.Second) / rate)
	tau = int64(float64(T) * c.burst)
	if cls == clsLoadTest {
		tau = T * c.ltTau / c.interval
		if c.ltInterval > 0 {
			ltT = int64(float64(T) / c.share)
			ltTau = ltT * c.ltBurst
		}
	}
	return T, tau, ltT, ltTau
}

func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return multiErr(errs)
}

type multiErr []error

func (m multiErr) Error() string {
	s := fmt.Sprintf("%d invalid rules:", len(m))
	for _, e := range m {
		s += "\n\t" + e.Error()
	}
	return s
}

func (m multiErr) Unwrap() []error { return m }
