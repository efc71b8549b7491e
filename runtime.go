package shadowlane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Runtime is one configured instance of shadowlane: the trust policy, the
// kill switch, the outbound rules and the counters every entry and exit
// uses. [Init] builds one from the environment and makes it the default;
// [New] builds one from a Config without touching globals. A Runtime is
// safe for concurrent use; its config can be replaced with [Runtime.Apply].
type Runtime struct {
	st   atomic.Pointer[compiled]
	kill atomic.Pointer[killState]

	logger *slog.Logger
	logs   *rateLog
	now    func() time.Time
	stats  counters

	// State every adapter and entry bound to this runtime shares; none of
	// it is package-level, so two runtimes in one process never mix.
	decisions *shadow.Series // store adapters' decisions (and, per run, into runs)
	rstats    *envtag.Stats  // routing picks and passive health
	runs      *runBook       // per-run evidence of the last runs
	limMu     sync.Mutex     // creates lim
	lim       atomic.Pointer[limiter.Limiter]
	routeMu   sync.Mutex     // creates route
	route     *routingShared // registry and its file poller, created on first use

	meter    metric.MeterProvider
	metricMu sync.Mutex
	reg      metric.Registration
	ereg     metric.Registration // routing stats

	mu        sync.Mutex
	closers   []func() error
	file      string
	opts      *options            // Init's or New's options; Reload merges with them
	getenv    func(string) string // from WithGetenv, else os.Getenv
	reloadErr atomic.Pointer[reloadResult]

	// adminMu serialises Apply (config swap and admin listener changes).
	adminMu      sync.Mutex
	adminManaged bool         // Init started the endpoint: Apply moves it
	admin        *adminServer // the listener in use, nil when off
	adminAddr    atomic.Value
}

type killState struct {
	enabled bool
	reason  string
	source  string // "config", "api", "admin", "default"
}

type reloadResult struct {
	at  time.Time
	err error
}

// Option configures [New] and [Init].
type Option func(*options)

type options struct {
	cfg       *Config
	edit      []func(*Config)
	file      string
	noFile    bool
	logger    *slog.Logger
	meter     metric.MeterProvider
	now       func() time.Time
	getenv    func(string) string
	noProp    bool
	noDefault bool
}

// WithConfig starts from c instead of an empty Config (file and environment
// still overlay it in Init).
func WithConfig(c Config) Option { return func(o *options) { cc := c; o.cfg = &cc } }

// WithEdit applies f to the merged config last, after file and environment.
func WithEdit(f func(*Config)) Option { return func(o *options) { o.edit = append(o.edit, f) } }

// WithConfigFile reads path instead of $SHADOWLANE_CONFIG.
func WithConfigFile(path string) Option { return func(o *options) { o.file = path } }

// WithoutConfigFile ignores $SHADOWLANE_CONFIG.
func WithoutConfigFile() Option { return func(o *options) { o.noFile = true } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider sets the MeterProvider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meter = mp } }

// WithClock injects the clock used for token expiry (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithGetenv replaces os.Getenv (tests).
func WithGetenv(f func(string) string) Option { return func(o *options) { o.getenv = f } }

// WithoutPropagator stops Init from installing the global propagator.
func WithoutPropagator() Option { return func(o *options) { o.noProp = true } }

// WithoutDefault stops Init from making the runtime the default one.
func WithoutDefault() Option { return func(o *options) { o.noDefault = true } }

// New builds a runtime from cfg and opts, validating the config. It sets
// no globals and starts nothing.
func New(cfg Config, opts ...Option) (*Runtime, error) {
	o := &options{}
	for _, f := range opts {
		f(o)
	}
	for _, f := range o.edit {
		f(&cfg)
	}
	return newRuntime(cfg, o)
}

func newRuntime(cfg Config, o *options) (*Runtime, error) {
	getenv := o.getenv
	if getenv == nil {
		getenv = osGetenv
	}
	c, err := cfg.compile(getenv)
	if err != nil {
		return nil, err
	}
	rt := &Runtime{logger: o.logger, now: o.now, meter: o.meter, opts: o, getenv: getenv}
	if rt.logger == nil {
		rt.logger = slog.Default()
	}
	if rt.now == nil {
		rt.now = time.Now
	}
	rt.initState(c.cfg.Evidence.Runs)
	rt.logs = newRateLog(rt.logger, 10*time.Second, rt.now)
	rt.st.Store(c)
	rt.logWarnings(nil, c)
	rt.kill.Store(&killState{enabled: c.loadTest, reason: c.loadTestReason, source: "config"})
	if err := rt.registerMetrics(); err != nil {
		return nil, err
	}
	rt.applyRouting(c)
	rt.applyLimits(c)
	return rt, nil
}

// logWarnings logs each warning of c that old did not have: once per
// runtime, not per request.
func (rt *Runtime) logWarnings(old, c *compiled) {
	for _, w := range c.warnings {
		if old == nil || !slices.Contains(old.warnings, w) {
			rt.logger.Warn("shadowlane: " + w)
		}
	}
}

// Config returns the config in force.
func (rt *Runtime) Config() Config { return rt.st.Load().cfg }

// Env returns this instance's own environment tag ("" for trunk).
func (rt *Runtime) Env() string { return rt.st.Load().cfg.Env }

// Codec returns the codec for the configured header names.
func (rt *Runtime) Codec() *propagation.Codec { return rt.st.Load().codec }

// Keyring returns the token keyring, nil when no keys are configured.
func (rt *Runtime) Keyring() *propagation.Keyring { return rt.st.Load().keyring }

// Trust returns the configured default trust of entries.
func (rt *Runtime) Trust() propagation.Trust { return rt.st.Load().trust }

// Apply validates cfg and, only if it is valid, makes it the config in
// force. On error the old config stays and the error names every bad
// field. A config that moves admin.addr of the endpoint Init started takes
// effect fully (new listener up, old one closed) or not at all (the error
// says why).
//
// The kill switch follows the config only when the config's own value
// changed, and by these rules of precedence:
//   - loadTest.enabled absent leaves the switch as it is (a file caught
//     half-written never turns load tests back on);
//   - an "off" set through [Runtime.SetLoadTest] or the admin endpoint
//     holds until it is turned on the same way, whatever a reload says;
//   - otherwise the config's value applies, "off" and "on" alike.
func (rt *Runtime) Apply(cfg Config) error {
	c, err := cfg.compile(rt.getenvOrOS())
	if err != nil {
		return err
	}
	rt.adminMu.Lock()
	defer rt.adminMu.Unlock()
	commit, err := rt.prepareAdmin(c)
	if err != nil {
		return err
	}
	old := rt.st.Load()
	if !c.loadTestSet {
		c.loadTest, c.loadTestReason = old.loadTest, old.loadTestReason
	}
	rt.st.Store(c)
	rt.logWarnings(old, c)
	rt.applyRouting(c)
	rt.applyLimits(c)
	rt.runs.setMax(evidenceRuns(c.cfg.Evidence.Runs))
	if c.loadTestSet && (old.loadTest != c.loadTest || old.loadTestReason != c.loadTestReason) {
		k := rt.kill.Load()
		switch latched := !k.enabled && (k.source == "api" || k.source == "admin"); {
		case !latched:
			rt.kill.Store(&killState{enabled: c.loadTest, reason: c.loadTestReason, source: "config"})
		case c.loadTest:
			rt.logger.Warn("shadowlane: config turns load tests on, but they were turned off through the "+k.source+"; they stay off until turned on the same way",
				"reason", k.reason)
		}
	}
	commit()
	return nil
}

func (rt *Runtime) getenvOrOS() func(string) string {
	if rt.getenv != nil {
		return rt.getenv
	}
	return osGetenv
}

// SetLoadTest switches load-test traffic on or off at run time (the kill
// switch). While off, every entry refuses marked requests with HTTP 503 /
// gRPC Unavailable and reason; production traffic is untouched. An "off"
// set here holds until SetLoadTest (or the admin endpoint) turns load tests
// on again: a config reload cannot (see [Runtime.Apply]).
func (rt *Runtime) SetLoadTest(enabled bool, reason string) {
	rt.setLoadTest(enabled, reason, "api")
}

func (rt *Runtime) setLoadTest(enabled bool, reason, source string) {
	rt.kill.Store(&killState{enabled: enabled, reason: reason, source: source})
	rt.logger.Warn("shadowlane: load-test traffic switched", "enabled", enabled, "reason", reason, "by", source)
}

// LoadTestEnabled reports whether load-test traffic is admitted, and the
// reason given when it is not.
func (rt *Runtime) LoadTestEnabled() (bool, string) {
	k := rt.kill.Load()
	return k.enabled, k.reason
}

// AddCloser registers f to run at Close.
func (rt *Runtime) AddCloser(f func() error) {
	rt.mu.Lock()
	rt.closers = append(rt.closers, f)
	rt.mu.Unlock()
}

// Close stops the reload watcher and the admin endpoint and unregisters
// the metrics callbacks.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	cl := rt.closers
	rt.closers = nil
	rt.mu.Unlock()
	var errs []error
	for i := len(cl) - 1; i >= 0; i-- {
		errs = append(errs, cl[i]())
	}
	rt.metricMu.Lock()
	if rt.reg != nil {
		errs = append(errs, rt.reg.Unregister())
		rt.reg = nil
	}
	if rt.ereg != nil {
		errs = append(errs, rt.ereg.Unregister())
		rt.ereg = nil
	}
	rt.metricMu.Unlock()
	return errors.Join(errs...)
}

// Entry describes one inbound entry for [Runtime.Admit].
type Entry struct {
	// Name labels the entry in logs ("http", "gin", "grpc", ...).
	Name string
	// Trust overrides the runtime's configured trust for this entry.
	Trust *propagation.Trust
	// Lower says the carrier's keys are lowercase (gRPC metadata).
	Lower bool
	// RouteOf, when set, names the route of a marked HTTP request that
	// has none yet (no ServeMux pattern, no route passed to
	// [Runtime.AdmitRoute]) for the per-run evidence: a template such as
	// "GET /orders/{id}", never the raw path, or "" when it does not know.
	// It is called for marked requests only (middleware.Handler sets it
	// when it wraps an *http.ServeMux).
	RouteOf func(*http.Request) string
}

// Refusal is an entry's decision not to serve a request.
type Refusal struct {
	HTTPStatus int    // 503 (kill switch) or 403 (untrusted, when rejecting)
	GRPCCode   uint32 // 14 Unavailable or 7 PermissionDenied (google.golang.org/grpc/codes values)
	Reason     string // short word: "killswitch", "untrusted"
	Err        error  // wraps shadow.ErrKillSwitch or propagation.ErrUntrusted
}

// Body is the text sent to refused HTTP callers.
func (r *Refusal) Body() string { return r.Err.Error() + "\n" }

// Admit is the inbound pipeline every entry runs: read the mark from g,
// apply the trust policy, apply the kill switch, and return the context the
// handler must use. An unmarked request costs one pass over the carrier's
// keys (or a few look-ups) and no allocation.
//
// At an edge (the default) a request with any load-test indicator — a run
// or token header or baggage member, on any line, in any letter case of the
// header name — is load-test traffic only with a token that verifies (the
// token alone is enough: run and env come from it). Otherwise it is refused
// with HTTP 403 / gRPC PermissionDenied and the reason (trust.onUntrusted:
// reject, the default), or continues as production when the config says
// strip. Refusals are counted (Stats().TokensRejected) and logged without
// flooding.
//
// A header-map carrier ([RequestCarrier], http.Header,
// propagation.HeaderMap) is read whole; when g is a [RequestCarrier], Admit
// also removes every mark carrier from the request's headers, so the
// handler, a reverse proxy or a client that copies inbound headers cannot
// forward an unverified mark: only the decided mark travels on, in the
// context. Entries on other carriers strip them themselves (the gRPC
// interceptors do).
func (rt *Runtime) Admit(ctx context.Context, e *Entry, g propagation.Getter) (context.Context, *Refusal) {
	return rt.AdmitRoute(ctx, e, g, "")
}

// AdmitRoute is [Runtime.Admit] for an entry whose router already matched
// the request: route names it in the per-run evidence (a bounded
// template: gin's c.FullPath(), a gRPC full method name; never the raw
// path). With route "" the route is the ServeMux pattern of an HTTP
// request (r.Pattern), else [Entry.RouteOf], else the method.
func (rt *Runtime) AdmitRoute(ctx context.Context, e *Entry, g propagation.Getter, route string) (context.Context, *Refusal) {
	st := rt.st.Load()
	var w propagation.Wire
	var h map[string][]string
	isMap := false
	if rc, ok := g.(requestCarrier); ok { // the HTTP entries' carrier: no interface assertion
		h, isMap = rc.r.Header, true
	} else {
		h, isMap = propagation.AsHeaderMap(g)
	}
	present := false
	switch {
	case isMap:
		if present = st.codec.Present(h); present {
			w = st.codec.ExtractHeader(h)
		}
	default:
		w = st.codec.ExtractGetter(g, e != nil && e.Lower)
	}
	st.edgeTag(e, g, &w) // routing.tagSource: env tag from a header, cookie or query parameter at edges
	if w.Source == propagation.SourceNone && w.Dropped == 0 && !w.LoadTest {
		// Nothing on the carrier: production. A mark already in ctx can only
		// come from the app itself (a propagator that found one would have
		// found it on this same carrier), so it is left alone.
		if present {
			stripCarrier(g, st.codec)
		}
		rt.stats.production.Add(1)
		return ctx, nil
	}
	ctx, ref := rt.admitSlow(ctx, e, st, w, g, route)
	if present {
		stripCarrier(g, st.codec)
	}
	return ctx, ref
}

// stripCarrier removes the mark carriers from an HTTP request's headers.
func stripCarrier(g propagation.Getter, c *propagation.Codec) {
	if rc, ok := g.(requestCarrier); ok {
		c.Strip(rc.r.Header)
	}
}

func (rt *Runtime) admitSlow(ctx context.Context, e *Entry, st *compiled, w propagation.Wire, g propagation.Getter, route string) (context.Context, *Refusal) {
	name := "entry"
	trust := st.trust
	if e != nil {
		if e.Trust != nil {
			trust = *e.Trust
		}
		if e.Name != "" {
			name = e.Name
		}
	}
	if w.Dropped != 0 {
		for _, r := range w.Dropped.Reasons() {
			rt.stats.dropped(r)
			rt.logs.warn("drop:"+r, "shadowlane: dropped a malformed mark value", "entry", name, "reason", r)
		}
	}
	p := propagation.Policy{Trust: trust, Keyring: st.keyring, Now: rt.now, RequireEnvBinding: st.requireEnvBinding}
	m, tok, err := p.Decide(w)
	if err != nil {
		reason := propagation.TokenReason(err)
		rt.stats.tokenRejected(reason)
		if st.rejectUntrusted {
			rt.stats.untrustedRefused.Add(1)
			rt.logs.warn("token:"+reason, "shadowlane: load-test request refused: mark not trusted", "entry", name, "reason", reason, "run", w.Mark.Run, "error", err.Error())
			return ctx, &Refusal{HTTPStatus: http.StatusForbidden, GRPCCode: 7, Reason: "untrusted", Err: err}
		}
		rt.logs.warn("token:"+reason, "shadowlane: load-test mark not trusted; continuing as production (trust.onUntrusted: strip)", "entry", name, "reason", reason, "run", w.Mark.Run, "error", err.Error())
	}
	if m.Run != "" {
		if k := rt.kill.Load(); !k.enabled {
			rt.runs.entry(m.Run, name, routeOf(e, g, route), true)
			rt.stats.killRefused.Add(1)
			msg := "load-test traffic is switched off"
			if k.reason != "" {
				msg += ": " + k.reason
			}
			return ctx, &Refusal{HTTPStatus: http.StatusServiceUnavailable, GRPCCode: 14, Reason: "killswitch",
				Err: fmt.Errorf("shadowlane: %s (%w)", msg, shadow.ErrKillSwitch)}
		}
	}
	rt.stats.request(m)
	if m.Run != "" {
		rt.runs.entry(m.Run, name, routeOf(e, g, route), false)
	}
	if m.IsZero() {
		if propagation.HasMark(ctx) {
			ctx = propagation.With(ctx, propagation.Mark{})
		}
		return ctx, nil
	}
	annotateSpan(ctx, m)
	return propagation.WithToken(ctx, m, tok), nil
}

// routeOf names the route of a request for the per-run evidence: the
// route the entry passed; for an HTTP request the net/http ServeMux
// pattern when it was already routed (it names the method when the
// pattern does), else what e.RouteOf says, else the method (a standard
// one; any other is "other"); "" when the carrier does not say. Never the
// path: the route is a bounded label.
func routeOf(e *Entry, g propagation.Getter, route string) string {
	if route != "" {
		return route
	}
	if rc, ok := g.(requestCarrier); ok && rc.r != nil {
		if rc.r.Pattern != "" {
			return rc.r.Pattern
		}
		if e != nil && e.RouteOf != nil {
			if p := e.RouteOf(rc.r); p != "" {
				return p
			}
		}
		return boundedMethod(rc.r.Method)
	}
	return ""
}

// boundedMethod is m when it is a standard HTTP method, else "other".
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

func annotateSpan(ctx context.Context, m propagation.Mark) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if m.Run != "" {
		span.SetAttributes(attribute.String("shadowlane.run", m.Run))
	}
	if m.Env != "" {
		span.SetAttributes(attribute.String("shadowlane.env", m.Env))
	}
}

// Propagator returns an OpenTelemetry propagator bound to this runtime's
// codec and trust policy (marks extracted through it are counted like
// marks read by entries).
func (rt *Runtime) Propagator() propagation.Propagator {
	st := rt.st.Load()
	return propagation.Propagator{
		Codec:  st.codec,
		Policy: &propagation.Policy{Trust: st.trust, Keyring: st.keyring, Now: rt.now, RequireEnvBinding: st.requireEnvBinding},
		OnWire: func(w propagation.Wire, err error) {
			for _, r := range w.Dropped.Reasons() {
				rt.stats.dropped(r)
			}
			if err != nil {
				rt.stats.tokenRejected(propagation.TokenReason(err))
			}
		},
	}
}

var (
	defaultMu sync.Mutex
	defaultRT atomic.Pointer[Runtime]
)

// SetDefault makes rt the runtime adapters use when none is given. The
// package-level helpers of the core packages follow it: shadow.Record and
// shadow.Snapshot count in its [Runtime.Decisions], envtag.DefaultPolicy is
// its [Runtime.RoutingPolicy], envtag.Snapshot reads its
// [Runtime.RoutingStats].
func SetDefault(rt *Runtime) { defaultRT.Store(rt) }

// The default runtime is the only package-level state: the core packages
// that cannot import this one reach it through these functions, installed
// once, so their package-level helpers delegate to it.
func init() {
	shadow.SetDefault(func() *shadow.Series { return Default().decisions })
	envtag.SetDefaultPolicyFunc(func() *envtag.Policy { return Default().RoutingPolicy() })
	envtag.SetDefaultStats(func() *envtag.Stats { return Default().rstats })
}

// Default returns the default runtime. Before [Init] (or [SetDefault]) it is
// a fail-closed runtime: edge trust with no keys and untrusted marks
// rejected, so load-test traffic is refused rather than treated as
// production, and production traffic flows.
func Default() *Runtime {
	if rt := defaultRT.Load(); rt != nil {
		return rt
	}
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if rt := defaultRT.Load(); rt != nil {
		return rt
	}
	rt := uninitialised()
	defaultRT.Store(rt)
	return rt
}

func uninitialised() *Runtime {
	rt := &Runtime{logger: slog.Default(), now: time.Now}
	rt.initState(0)
	rt.logs = newRateLog(rt.logger, 10*time.Second, rt.now)
	rt.st.Store(&compiled{codec: propagation.DefaultCodec(), trust: propagation.Edge, rejectUntrusted: true,
		loadTest: true, outbound: &outboundRules{}, warnings: []string{WarnNoTokenKeys}})
	rt.kill.Store(&killState{enabled: true, source: "default"})
	_ = rt.registerMetrics()
	return rt
}

// OrDefault returns rt, or the default runtime when rt is nil. Adapters
// call it per request so a runtime set by Init after the adapter was built
// is still used.
func OrDefault(rt *Runtime) *Runtime {
	if rt != nil {
		return rt
	}
	return Default()
}

// meterOrGlobal is the MeterProvider in use.
func (rt *Runtime) meterOrGlobal() metric.MeterProvider {
	if rt.meter != nil {
		return rt.meter
	}
	return otel.GetMeterProvider()
}
