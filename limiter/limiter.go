package limiter

import (
	"context"
	"fmt"
	"math"
	"sort"
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

	mu        sync.Mutex
	rules     []Rule
	resources map[string]*Resource
	overflow  *Resource
	states    map[stateKey]*state
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
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Rule(nil), l.rules...)
}

// SetRules validates rules and, when all are valid, replaces the rules in
// force. On error nothing changes: the old rules stay and the error lists
// every problem, wrapping [ErrInvalidRule]. Rule state (buckets, in-flight
// counts, breaker state) carries over for rules whose name is unchanged.
func (l *Limiter) SetRules(rules []Rule) error {
	seen := map[string]int{}
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
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rules = append([]Rule(nil), rules...)
	live := map[stateKey]bool{}
	for _, res := range l.resources {
		l.compile(res, live)
	}
	if l.overflow != nil {
		l.compile(l.overflow, live)
	}
	for k := range l.states {
		if !live[k] {
			delete(l.states, k)
		}
	}
	return nil
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
	defer l.mu.Unlock()
	if r, ok := l.resources[name]; ok {
		return r
	}
	if len(l.resources) >= l.maxRes {
		if l.overflow == nil {
			l.overflow = l.newResource("_other")
			l.compile(l.overflow, nil)
		}
		return l.overflow
	}
	r := l.newResource(name)
	l.compile(r, nil)
	l.resources[name] = r
	l.fast.Store(name, r)
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
		r.sysAlert = l.alertFor("system", name)
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

// compile builds the check list of res from l.rules. l.mu is held.
func (l *Limiter) compile(res *Resource, live map[stateKey]bool) {
	set := &ruleSet{}
	for i := range l.rules {
		r := &l.rules[i]
		if !Match(r.Resource, res.name) {
			continue
		}
		base := check{rule: r.name(), dry: r.DryRun, env: r.Env}
		if len(l.alertFns) > 0 {
			base.alert = l.alertFor(base.rule, res.name)
		}
		switch r.Class {
		case ClassProduction:
			base.cls = clsProduction
		case ClassLoadTest:
			base.cls = clsLoadTest
		}
		share := r.LoadTestShare
		if share == 0 || base.cls != clsAll {
			share = 1
		}
		if r.Breaker != nil {
			c := base
			c.kind = kindBreaker
			c.br = l.breakerState(stateKey{c.rule, res.name, kindBreaker}, r.Breaker, live)
			c.limit = r.Breaker.Threshold
			set.checks = append(set.checks, c)
		}
		if r.Concurrency > 0 {
			c := base
			c.kind = kindConcurrency
			c.st = l.state(stateKey{c.rule, res.name, kindConcurrency}, live)
			c.conc = int64(r.Concurrency)
			c.ltConc = int64(math.Max(1, math.Floor(float64(r.Concurrency)*share)))
			c.limit = float64(r.Concurrency)
			set.checks = append(set.checks, c)
		}
		if r.Param != nil {
			c := base
			c.kind = kindParam
			c.pkey = r.Param.Key
			c.ps = l.paramState(stateKey{c.rule, res.name, kindParam}, *r.Param, r.QPS, r.Burst, live)
			c.limit = r.QPS
			burst := r.Burst
			if burst == 0 {
				burst = max(1, int(r.QPS/10))
			}
			if float64(burst)/r.QPS*float64(time.Second) < float64(coarseTolerance) {
				set.precise = true
			}
			set.params = true
			set.checks = append(set.checks, c)
		} else if r.QPS > 0 {
			c := base
			c.kind = kindQPS
			c.st = l.state(stateKey{c.rule, res.name, kindQPS}, live)
			burst := r.Burst
			if burst == 0 {
				burst = max(1, int(r.QPS/10))
			}
			c.burst = float64(burst)
			c.interval = int64(math.Max(1, float64(time.Second)/r.QPS))
			c.tau = c.interval * int64(burst)
			// Load-test traffic must leave (1-share) of the burst unused.
			c.ltTau = c.tau - int64(float64(c.tau)*(1-share))
			c.maxWait = int64(r.MaxWait)
			c.warm = int64(r.WarmUp)
			cf := r.ColdFactor
			if cf == 0 {
				cf = 3
			}
			c.coldFactor = cf
			c.limit = r.QPS
			c.st.rescale(c.interval, l.now())
			if c.maxWait > 0 || min(c.tau, c.ltTau) < coarseTolerance {
				set.precise = true
			}
			set.checks = append(set.checks, c)
		}
	}
	// Breakers first (cheap reads), then concurrency (reversible), then
	// rate checks (which reserve time).
	sort.SliceStable(set.checks, func(i, j int) bool { return set.checks[i].kind < set.checks[j].kind })
	if len(set.checks) > 64 {
		set.checks = set.checks[:64]
	}
	res.set.Store(set)
}

func (l *Limiter) state(k stateKey, live map[stateKey]bool) *state {
	if live != nil {
		live[k] = true
	}
	if s, ok := l.states[k]; ok && s.br == nil {
		return s
	}
	s := &state{}
	s.tat.Store(math.MinInt64 / 2)
	l.states[k] = s
	return s
}

func (l *Limiter) paramState(k stateKey, pr ParamRule, qps float64, burst int, live map[stateKey]bool) *paramState {
	if live != nil {
		live[k] = true
	}
	if s, ok := l.states[k]; ok && s.ps != nil && s.ps.sameConfig(pr, qps, burst) {
		return s.ps
	}
	s := &state{ps: newParamState(pr, qps, burst)}
	l.states[k] = s
	return s.ps
}

func (l *Limiter) breakerState(k stateKey, br *BreakerRule, live map[stateKey]bool) *breaker {
	if live != nil {
		live[k] = true
	}
	if s, ok := l.states[k]; ok && s.br != nil && s.br.cfg == *br {
		return s.br
	}
	s := &state{br: newBreaker(l, *br, k.resource, k.rule)}
	l.states[k] = s
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
	tat       atomic.Int64 // GCRA theoretical arrival time, ns since epoch
	warmStart atomic.Int64 // start of the current warm-up
	inflight  atomic.Int64
	br        *breaker
	ps        *paramState
	interval  int64 // emission interval tat was built with; guarded by Limiter.mu
}

// rescale carries a rate check's debt (requests admitted ahead of the
// sustained rate) across a change of rate: the same number of requests,
// now spaced by the new interval, so raising a limit takes effect at once
// and lowering it does not forgive the past.
func (s *state) rescale(interval, now int64) {
	if s.interval != 0 && s.interval != interval {
		if tat := s.tat.Load(); tat > now {
			debt := float64(tat-now) / float64(s.interval)
			s.tat.CompareAndSwap(tat, now+int64(debt*float64(interval)))
		}
	}
	s.interval = interval
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
	ltTau      int64 // tolerance load-test traffic may use
	burst      float64
	maxWait    int64
	warm       int64
	coldFactor float64
}

type ruleSet struct {
	checks  []check
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
	sys     *system // system protection that admitted the request, if any
	entered uint64  // bit i: checks[i] holds a slot (concurrency or breaker probe)
	cls     uint8
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
				t.entered |= 1 << i
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
				t.entered |= 1 << i
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
				t.entered |= 1 << i
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
		if t.entered&(1<<i) != 0 {
			switch c.kind {
			case kindConcurrency:
				c.st.inflight.Add(-1)
			case kindBreaker:
				c.br.cancelProbe()
			case kindQPS:
				c.st.tat.Add(-c.interval)
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
	for i := range t.set.checks {
		c := &t.set.checks[i]
		switch c.kind {
		case kindConcurrency:
			if t.entered&(1<<i) != 0 {
				c.st.inflight.Add(-1)
			}
		case kindBreaker:
			c.br.done(now, rt, err != nil, t.entered&(1<<i) != 0)
		}
	}
	t.r.stats[t.cls-1].exit(now, rt, err != nil)
	if t.sys != nil {
		t.sys.exit(now, rt)
	}
}

// take runs the GCRA rate check at now. It returns (wait, true) when the
// request may pass after waiting wait ns (0 = now), or (retryAfter, false).
func (c *check) take(now int64, cls uint8) (int64, bool) {
	st := c.st
	T, tau := c.interval, c.tau
	if cls == clsLoadTest {
		tau = c.ltTau
	}
	if c.warm > 0 {
		T, tau = c.warmInterval(now, cls)
	}
	for {
		tat := st.tat.Load()
		base := max(tat, now)
		newTat := base + T
		wait := newTat - tau - now
		if wait > 0 && (wait > c.maxWait || c.dry) {
			return wait, false
		}
		if st.tat.CompareAndSwap(tat, newTat) {
			return max(wait, 0), true
		}
	}
}

// warmInterval returns the emission interval and tolerance during warm-up.
func (c *check) warmInterval(now int64, cls uint8) (int64, int64) {
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
			return c.interval, c.ltTau
		}
		return c.interval, c.tau
	}
	full := float64(time.Second) / float64(c.interval)
	cold := full / c.coldFactor
	rate := cold + (full-cold)*float64(el)/float64(c.warm)
	T := int64(float64(time.Second) / rate)
	tau := int64(float64(T) * c.burst)
	if cls == clsLoadTest {
		tau = int64(float64(tau) * float64(c.ltTau) / float64(c.tau))
	}
	return T, tau
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
