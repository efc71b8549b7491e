package shadowlane

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane/internal/cfgfile"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Config is shadowlane's configuration: one YAML file (SHADOWLANE_CONFIG),
// environment variables and options, merged in that order (later wins), then
// validated as a whole by [Config.Validate]. The file may also hold a
// "stores" section: it is `shadowlane check`'s, and the runtime skips it.
type Config struct {
	// Service names this service in metrics, logs and the drill.
	Service string `yaml:"service"`
	// Env is this instance's own environment tag (SHADOWLANE_ENV); empty is trunk.
	Env string `yaml:"env"`
	// Trust configures how entries treat incoming marks.
	Trust TrustConfig `yaml:"trust"`
	// Headers overrides the header and baggage names of the mark.
	Headers propagation.Names `yaml:"headers"`
	// LoadTest is the kill switch.
	LoadTest LoadTestConfig `yaml:"loadTest"`
	// Outbound lists the hosts load-test traffic may call, and mocks for the rest.
	Outbound OutboundConfig `yaml:"outbound"`
	// Admin configures the admin endpoint (kill switch, status).
	Admin AdminConfig `yaml:"admin"`
	// Reload is how often the config file is checked for changes (default
	// 2s, at least 100ms; "0s" turns reloading off), read at Init. A change
	// applies once two checks in a row read the same bytes.
	Reload *time.Duration `yaml:"reload"`
	// Routing configures environment routing (see package envtag).
	Routing RoutingConfig `yaml:"routing"`
	// Limits configures flow control (see package limiter).
	Limits LimitsConfig `yaml:"limits"`
	// Redis configures the shadowing of Redis commands (adapters/slredis).
	Redis RedisConfig `yaml:"redis"`
	// TestData says what only load-test data looks like: the runtime
	// lost-mark guard of the exits (see [TestDataConfig]).
	TestData TestDataConfig `yaml:"testData"`
	// Evidence configures the per-run evidence kept for the admin
	// endpoint's /shadowlane/status?run=R.
	Evidence EvidenceConfig `yaml:"evidence"`
	// Migration configures a broker migration by dual write (see
	// [MigrationConfig] and package shadow/bus/migrate).
	Migration MigrationConfig `yaml:"migration"`
	// InstallPropagator installs shadowlane's propagator into the global
	// OpenTelemetry TextMapPropagator (default true).
	InstallPropagator *bool `yaml:"installPropagator"`
}

// TrustConfig configures edge trust.
type TrustConfig struct {
	// Mode is the default trust of this service's entries: "edge" (the
	// default: load-test marks need a valid signed token) or "internal"
	// (marks from peers are taken as sent).
	Mode string `yaml:"mode"`
	// OnUntrusted is what an edge does with a request that carries any
	// load-test indicator (run or token, header or baggage) but fails
	// verification (token missing, expired, tampered, for another run or
	// env; carriers that disagree; a malformed run): "reject" (the
	// default: HTTP 403 with the reason / gRPC PermissionDenied, counted,
	// logged rate-limited) or "strip" (continue as production). Strip is
	// risky: an expiring token during a long test silently turns the load
	// into production load on real data and real third parties.
	OnUntrusted string `yaml:"onUntrusted"`
	// RequireEnvBinding makes the token decide the env tag of load-test
	// traffic at an edge: a request whose env tag is not the one its token
	// is bound to is untrusted. For teams that route load-test traffic by
	// env; the trade-off is one token per env. Default false: a token not
	// bound to an env may be combined with any env tag.
	RequireEnvBinding bool `yaml:"requireEnvBinding"`
	// Keys are the HMAC keys; the first one signs.
	Keys []KeyConfig `yaml:"keys"`
}

// KeyConfig is one token key. The secret is given inline (raw text, or
// "base64:..." for binary) or, better, named by SecretEnv.
type KeyConfig struct {
	ID        string `yaml:"id"`
	Secret    string `yaml:"secret"`
	SecretEnv string `yaml:"secretEnv"`
}

// LoadTestConfig is the kill switch as configured.
type LoadTestConfig struct {
	// Enabled admits load-test traffic (default true). False refuses every
	// marked request at every entry. On reload an absent value leaves the
	// switch as it is, and an "off" set through the API or the admin
	// endpoint holds whatever the file says (see [Runtime.Apply]).
	Enabled *bool `yaml:"enabled"`
	// Reason is shown to refused callers when Enabled is false.
	Reason string `yaml:"reason"`
}

// OutboundConfig controls calls that load-test traffic makes to hosts.
type OutboundConfig struct {
	// Allow lists the internal hosts load-test traffic may call: "orders",
	// "orders:8080", "*.svc.cluster.local", "10.0.0.0/8", "127.0.0.1:9000".
	// Anything else is blocked or mocked. Production traffic is never affected.
	Allow []string `yaml:"allow"`
	// Mocks answer load-test calls to third parties instead of blocking them.
	Mocks []MockConfig `yaml:"mocks"`
}

// MockConfig is one mocked third-party response.
type MockConfig struct {
	Host    string            `yaml:"host"`   // host or host:port pattern, as in Allow
	Path    string            `yaml:"path"`   // exact path, or a prefix ending in "*"; empty matches every path
	Method  string            `yaml:"method"` // empty matches every method
	Status  int               `yaml:"status"` // default 200
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`

	// GRPCMethod makes this a gRPC mock: the full method
	// ("/pay.v1.Payments/Charge", or a prefix ending in "*") of calls
	// through the slgrpc client interceptors to Host (the target's
	// authority). Body is then the response message in protobuf JSON, and
	// a non-zero GRPCCode fails the call with that code and Body as the
	// message. Path, Method, Status and Headers do not apply.
	GRPCMethod string `yaml:"grpcMethod"`
	GRPCCode   int    `yaml:"grpcCode"`
}

// AdminConfig configures the admin endpoint.
type AdminConfig struct {
	// Addr to listen on; empty disables the endpoint. A non-loopback address
	// requires Token.
	Addr string `yaml:"addr"`
	// Token (or the environment variable TokenEnv names) protects the
	// endpoint: requests must send "Authorization: Bearer <token>".
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"tokenEnv"`
	// Hosts lists the host names the endpoint answers to besides IP
	// addresses and localhost (the Host header check that guards against
	// DNS rebinding), e.g. the pod's DNS name.
	Hosts []string `yaml:"hosts"`
}

// RedisConfig configures how Redis commands of load-test traffic are
// shadowed by adapters/slredis (hooks built with its WithRuntime option,
// or with none: the default runtime that [Init] sets).
//
//	redis:
//	  scripts: refuse
type RedisConfig struct {
	// Scripts is what a marked EVAL, EVALSHA or FCALL (and their _RO forms)
	// does: "allow" (the default) renames the keys the script declares,
	// but a script that builds key names itself reads or writes production
	// keys; "refuse" refuses them with shadow.ErrBlocked. `shadowlane
	// check` warns while scripts are allowed.
	Scripts string `yaml:"scripts"`
}

// RefusesScripts reports whether marked scripts are refused.
func (r RedisConfig) RefusesScripts() bool { return r.Scripts == "refuse" }

func (r RedisConfig) validate(bad func(field, format string, a ...any)) {
	switch r.Scripts {
	case "", "allow", "refuse":
	default:
		bad("redis.scripts", "%q: want allow or refuse", r.Scripts)
	}
}

// WarnNoTokenKeys is the warning a runtime gives (logged once, shown in
// Stats().Warnings and /shadowlane/status) when it runs edge trust without
// token keys: every load-test request at an edge is refused.
const WarnNoTokenKeys = "trust: edge mode without token keys: every load-test request at an edge entry is refused (fail closed); add trust.keys (or SHADOWLANE_KEYS), or set trust.mode: internal on services only our own services call"

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("shadowlane: invalid config")

// FieldError is one configuration problem, naming the field.
type FieldError struct {
	Field string // e.g. "trust.keys[1].secret"
	Msg   string
}

func (e *FieldError) Error() string { return "config " + e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrConfig }

// DecodeError is a problem in the config file itself (syntax, an unknown
// field, a value of the wrong type): the [FieldError] (errors.As finds it;
// Field is "" when the problem is not one field's) and where it is in the
// file.
type DecodeError struct {
	Line int // 1-based line in the file; 0 when the decoder does not say
	Col  int // 1-based column on Line; 0 when unknown
	FieldError
}

// Error reads "config line 12, column 5, trust.keys[1].secret: ...".
func (e *DecodeError) Error() string {
	where := cfgfile.Where(e.Line, e.Col)
	if where != "" && e.Field != "" {
		where += ", "
	}
	return "config " + where + e.Field + ": " + e.Msg
}

// Unwrap returns the FieldError (which wraps ErrConfig).
func (e *DecodeError) Unwrap() error { return &e.FieldError }

// LoadFile reads and decodes a YAML config file of at most
// [MaxConfigFileSize] bytes (strict: unknown fields and duplicate keys are
// errors, each a [*DecodeError] with its line, column and path). It does
// not validate; see [Config.Validate], which the runtime and `shadowlane
// check` both use.
func LoadFile(path string) (Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return Config{}, err
	}
	return decodeConfig(path, data)
}

// decodeConfig decodes the content of the config file named name. The
// top-level "stores" section belongs to `shadowlane check` (which reads it
// through internal/cfgfile): the runtime skips it.
func decodeConfig(name string, data []byte) (Config, error) {
	var f fileConfig
	err := decodeInto(name, data, &f)
	return f.Config, err
}

// fileConfig is what the config file holds: the Config, and the stores
// section the runtime skips.
type fileConfig struct {
	Config `yaml:",inline"`
	Stores cfgfile.Skip `yaml:"stores"`
}

// decodeInto decodes the content of the config file named name into v.
func decodeInto(name string, data []byte, v any) error {
	if err := unmarshalYAML(data, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
	}
	return nil
}

// loadInto is internal/cfgfile.Load: the command's own sections, decoded
// like the runtime's.
func loadInto(path string, v any) error {
	data, err := readConfigFile(path)
	if err != nil {
		return err
	}
	return decodeInto(path, data, v)
}

func init() { cfgfile.Load = loadInto }

// ApplyEnv overlays the SHADOWLANE_* environment variables on c:
// SHADOWLANE_SERVICE, SHADOWLANE_ENV, SHADOWLANE_TRUST (edge|internal),
// SHADOWLANE_ON_UNTRUSTED (reject|strip), SHADOWLANE_KEYS
// ("id=secret,id2=secret2"; replaces the keys), SHADOWLANE_LOADTEST
// (on|off), SHADOWLANE_ALLOW (comma-separated hosts; replaces the list),
// SHADOWLANE_ADMIN_ADDR, SHADOWLANE_ADMIN_TOKEN, SHADOWLANE_REDIS_SCRIPTS
// (allow|refuse), SHADOWLANE_ZONE (routing.zone), SHADOWLANE_MIGRATION_PHASE
// (migration.phase).
func ApplyEnv(c *Config, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	set := func(name string, f func(v string)) {
		if v, ok := lookup(getenv, name); ok {
			f(v)
		}
	}
	set("SHADOWLANE_SERVICE", func(v string) { c.Service = v })
	set("SHADOWLANE_ENV", func(v string) { c.Env = v })
	set("SHADOWLANE_TRUST", func(v string) { c.Trust.Mode = v })
	set("SHADOWLANE_ON_UNTRUSTED", func(v string) { c.Trust.OnUntrusted = v })
	set("SHADOWLANE_KEYS", func(v string) {
		c.Trust.Keys = nil
		for _, kv := range splitList(v) {
			id, secret, ok := strings.Cut(kv, "=")
			if !ok {
				errs = append(errs, &FieldError{Field: "SHADOWLANE_KEYS", Msg: "want id=secret[,id=secret]"})
				continue
			}
			c.Trust.Keys = append(c.Trust.Keys, KeyConfig{ID: id, Secret: secret})
		}
	})
	set("SHADOWLANE_LOADTEST", func(v string) {
		switch strings.ToLower(v) {
		case "on", "true", "1", "enabled":
			t := true
			c.LoadTest.Enabled = &t
		case "off", "false", "0", "disabled":
			f := false
			c.LoadTest.Enabled = &f
		default:
			errs = append(errs, &FieldError{Field: "SHADOWLANE_LOADTEST", Msg: fmt.Sprintf("%q: want on or off", v)})
		}
	})
	set("SHADOWLANE_ALLOW", func(v string) { c.Outbound.Allow = splitList(v) })
	set("SHADOWLANE_ADMIN_ADDR", func(v string) { c.Admin.Addr = v })
	set("SHADOWLANE_ADMIN_TOKEN", func(v string) { c.Admin.Token = v })
	set("SHADOWLANE_REDIS_SCRIPTS", func(v string) { c.Redis.Scripts = v })
	set("SHADOWLANE_ZONE", func(v string) { c.Routing.Zone = v }) // envtag.ZoneEnvVar
	set("SHADOWLANE_MIGRATION_PHASE", func(v string) {
		if err := migrationEnv(c, v); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// splitList is [cfgfile.SplitList].
func splitList(s string) []string { return cfgfile.SplitList(s) }

// Validate checks every field and returns all problems at once, each a
// [*FieldError] naming the field (errors.Is(err, ErrConfig) holds).
func (c *Config) Validate() error {
	_, err := c.compile(os.Getenv)
	return err
}

// ValidateEnv is [Config.Validate] reading environment variables (secretEnv,
// tokenEnv) through getenv: the validator the runtime runs at Init, Apply
// and reload, and `shadowlane check` runs on a file.
func (c *Config) ValidateEnv(getenv func(string) string) error {
	_, err := c.compile(getenv)
	return err
}

// compiled is the validated, ready-to-use form of a Config.
type compiled struct {
	cfg             Config
	codec           *propagation.Codec
	trust           propagation.Trust
	rejectUntrusted bool
	keyring         *propagation.Keyring
	loadTest        bool
	loadTestSet     bool // loadTest.enabled was given
	loadTestReason  string
	outbound        *outboundRules
	adminToken      string
	admin           *adminSettings
	reload          time.Duration
	installProp     bool
	routing         *routingState
	limits          *limitsState
	migration       migrate.Plan
	testData        *TestData // nil: no testData rules, the exits skip the lost-mark guard

	// requireEnvBinding is trust.requireEnvBinding.
	requireEnvBinding bool
	// warnings are problems that do not stop the service (shown in Stats).
	warnings []string
}

func (c *Config) compile(getenv func(string) string) (*compiled, error) {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	out := &compiled{cfg: *c, loadTest: true, reload: 2 * time.Second, installProp: true}
	if c.Env != "" && !propagation.ValidID(c.Env) {
		bad("env", "%q must be 1..%d bytes of [A-Za-z0-9_-]", c.Env, propagation.MaxIDLen)
	}
	t, err := propagation.ParseTrust(c.Trust.Mode)
	if err != nil {
		bad("trust.mode", "%q: want edge or internal", c.Trust.Mode)
	}
	out.trust = t
	switch c.Trust.OnUntrusted {
	case "strip":
	case "", "reject":
		out.rejectUntrusted = true
	default:
		bad("trust.onUntrusted", "%q: want strip or reject", c.Trust.OnUntrusted)
	}
	var keys []propagation.Key
	for i, k := range c.Trust.Keys {
		f := fmt.Sprintf("trust.keys[%d]", i)
		if !propagation.ValidID(k.ID) {
			bad(f+".id", "%q must be 1..%d bytes of [A-Za-z0-9_-]", k.ID, propagation.MaxIDLen)
		}
		secret := k.Secret
		if k.SecretEnv != "" {
			if secret != "" {
				bad(f, "set secret or secretEnv, not both")
			}
			secret = getenv(k.SecretEnv)
			if secret == "" {
				bad(f+".secretEnv", "environment variable %s is empty or unset", k.SecretEnv)
				continue
			}
		}
		raw := []byte(secret)
		if b64, ok := strings.CutPrefix(secret, "base64:"); ok {
			raw, err = base64.StdEncoding.DecodeString(b64)
			if err != nil {
				bad(f+".secret", "base64: %v", err)
				continue
			}
		}
		if len(raw) < propagation.MinSecretLen {
			bad(f+".secret", "%d bytes; a token key needs at least %d", len(raw), propagation.MinSecretLen)
			continue
		}
		keys = append(keys, propagation.Key{ID: k.ID, Secret: raw})
	}
	if len(keys) > 0 && len(keys) == len(c.Trust.Keys) {
		out.keyring, err = propagation.NewKeyring(keys...)
		if err != nil {
			bad("trust.keys", "%v", err)
		}
	}
	out.requireEnvBinding = c.Trust.RequireEnvBinding
	if t == propagation.Edge && len(c.Trust.Keys) == 0 {
		// Absent, not invalid: the service starts and fails closed.
		out.warnings = append(out.warnings, WarnNoTokenKeys)
	}
	validateNames(c.Headers, bad)
	out.codec = propagation.NewCodec(c.Headers)
	if c.LoadTest.Enabled != nil {
		out.loadTest, out.loadTestSet = *c.LoadTest.Enabled, true
	}
	out.loadTestReason = c.LoadTest.Reason
	if len(c.LoadTest.Reason) > MaxReasonLen {
		bad("loadTest.reason", "%d bytes; at most %d", len(c.LoadTest.Reason), MaxReasonLen)
	}
	out.outbound, errs = compileOutbound(c.Outbound, errs)
	if c.Admin.Addr != "" {
		host, _, err := net.SplitHostPort(c.Admin.Addr)
		if err != nil {
			bad("admin.addr", "%q: %v", c.Admin.Addr, err)
		}
		tok := c.Admin.Token
		if c.Admin.TokenEnv != "" {
			tok = getenv(c.Admin.TokenEnv)
			if tok == "" {
				bad("admin.tokenEnv", "environment variable %s is empty or unset", c.Admin.TokenEnv)
			}
		}
		if tok == "" && err == nil && !isLoopback(host) {
			bad("admin.token", "admin.addr %q is not a loopback address, so the endpoint needs a token", c.Admin.Addr)
		}
		if tok != "" && len(tok) < 16 {
			bad("admin.token", "%d bytes; use at least 16", len(tok))
		}
		out.adminToken = tok
	}
	out.admin = &adminSettings{token: out.adminToken}
	for i, h := range c.Admin.Hosts {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h == "" || strings.ContainsAny(h, "*/:@ ") {
			bad(fmt.Sprintf("admin.hosts[%d]", i), "%q: want a host name, without port or wildcard", c.Admin.Hosts[i])
			continue
		}
		out.admin.hosts = append(out.admin.hosts, h)
	}
	if c.Reload != nil {
		switch d := *c.Reload; {
		case d < 0:
			bad("reload", "%s is negative", d)
		case d > 0 && d < MinReloadInterval:
			bad("reload", "%s is too often: at least %s (0s turns reloading off)", d, MinReloadInterval)
		}
		out.reload = *c.Reload
	}
	if c.InstallPropagator != nil {
		out.installProp = *c.InstallPropagator
	}
	out.routing, errs = compileRouting(c.Routing, errs)
	out.limits, errs = compileLimits(c.Limits, errs)
	out.testData = c.TestData.compile(bad)
	c.Redis.validate(bad)
	c.Evidence.validate(bad)
	out.migration = c.Migration.compile(bad)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// MinReloadInterval is the shortest reload interval the config accepts.
const MinReloadInterval = 100 * time.Millisecond

// validateNames refuses header and baggage names that cannot work: invalid
// keys, two mark fields on one name (a run read as an env, or the other way
// round), and a mark header named like the W3C baggage header itself.
func validateNames(n propagation.Names, bad func(field, format string, a ...any)) {
	d := propagation.DefaultNames
	or := func(v, dv string) string {
		if v == "" {
			return dv
		}
		return v
	}
	headers := []struct{ field, v string }{
		{"headers.run", or(n.RunHeader, d.RunHeader)},
		{"headers.env", or(n.EnvHeader, d.EnvHeader)},
		{"headers.token", or(n.TokenHeader, d.TokenHeader)},
	}
	members := []struct{ field, v string }{
		{"headers.runMember", or(n.RunMember, d.RunMember)},
		{"headers.envMember", or(n.EnvMember, d.EnvMember)},
		{"headers.tokenMember", or(n.TokenMember, d.TokenMember)},
	}
	for i, h := range headers {
		switch {
		case !validToken(h.v):
			bad(h.field, "%q is not a valid header name", h.v)
		case strings.EqualFold(h.v, "baggage"):
			bad(h.field, "%q is the W3C baggage header; name a header of its own (the mark also travels as baggage members, see headers.runMember)", h.v)
		}
		for _, o := range headers[:i] {
			if strings.EqualFold(h.v, o.v) {
				bad(h.field, "%q is also %s (header names are case-insensitive): each mark field needs its own header", h.v, o.field)
			}
		}
	}
	for i, m := range members {
		if !validToken(m.v) {
			bad(m.field, "%q is not a valid baggage key", m.v)
		}
		for _, o := range members[:i] {
			if m.v == o.v {
				bad(m.field, "%q is also %s: each mark field needs its own baggage member", m.v, o.field)
			}
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}
