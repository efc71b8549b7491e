package shadowlane

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

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
	if rt := defaultRT.Load(); rt != nil { // inlined: the exits' hot path
		return rt
	}
	return defaultSlow()
}

func defaultSlow() *Runtime {
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
