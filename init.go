package shadowlane

import (
	"os"
	"reflect"

	"go.opentelemetry.io/otel"
	otelprop "go.opentelemetry.io/otel/propagation"
)

var osGetenv = os.Getenv

// Init is the one call an app makes: it merges the config (options, the
// YAML file named by $SHADOWLANE_CONFIG or [WithConfigFile], the
// SHADOWLANE_* environment variables, then [WithEdit] functions), validates
// all of it, makes the runtime the default one adapters use, installs the
// mark propagator into the global OpenTelemetry propagator (after the
// TraceContext and Baggage propagators, keeping any the app set), starts the
// admin endpoint when admin.addr is set, and reloads the file when it
// changes, keeping the old config when the new one is invalid.
//
//	rt, err := shadowlane.Init()
//	if err != nil { log.Fatal(err) }
//	defer rt.Close()
func Init(opts ...Option) (*Runtime, error) {
	o := &options{}
	for _, f := range opts {
		f(o)
	}
	getenv := o.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	file := o.file
	if file == "" && !o.noFile {
		file = getenv("SHADOWLANE_CONFIG")
	}
	cfg, data, err := loadMerged(o, file, getenv)
	if err != nil {
		return nil, err
	}
	rt, err := newRuntime(cfg, o)
	if err != nil {
		return nil, err
	}
	rt.file = file
	st := rt.st.Load()
	if st.installProp && !o.noProp {
		InstallPropagator(rt)
	}
	if err := rt.startAdmin(st); err != nil {
		rt.Close()
		return nil, err
	}
	if file != "" && st.reload > 0 {
		rt.watch(st.reload, data)
	}
	if !o.noDefault {
		SetDefault(rt)
	}
	if st.cfg.Trust.Mode == "internal" {
		rt.logger.Info("shadowlane: initialised", "service", st.cfg.Service, "env", st.cfg.Env, "trust", "internal")
	} else {
		rt.logger.Info("shadowlane: initialised", "service", st.cfg.Service, "env", st.cfg.Env, "trust", "edge", "keys", len(st.cfg.Trust.Keys))
	}
	return rt, nil
}

// loadMerged reads file once it has settled and merges it (see
// loadMergedData); it returns the file's content too.
func loadMerged(o *options, file string, getenv func(string) string) (Config, []byte, error) {
	var data []byte
	if file != "" {
		var err error
		if data, err = readStable(file, settleTime); err != nil {
			return Config{}, nil, err
		}
	}
	cfg, err := loadMergedData(o, file, data, getenv)
	return cfg, data, err
}

// loadMergedData merges o's config, the file content data (when file is
// set), the environment and o's edits, in that order.
func loadMergedData(o *options, file string, data []byte, getenv func(string) string) (Config, error) {
	var cfg Config
	if o.cfg != nil {
		cfg = *o.cfg
	}
	if file != "" {
		fc, err := decodeConfig(file, data)
		if err != nil {
			return cfg, err
		}
		if o.cfg != nil {
			mergeConfig(&cfg, fc)
		} else {
			cfg = fc
		}
	}
	if err := ApplyEnv(&cfg, getenv); err != nil {
		return cfg, err
	}
	for _, f := range o.edit {
		f(&cfg)
	}
	return cfg, nil
}

// mergeConfig overlays the non-zero top-level sections of src on dst.
func mergeConfig(dst *Config, src Config) {
	if src.Service != "" {
		dst.Service = src.Service
	}
	if src.Env != "" {
		dst.Env = src.Env
	}
	if src.Trust.Mode != "" {
		dst.Trust.Mode = src.Trust.Mode
	}
	if src.Trust.OnUntrusted != "" {
		dst.Trust.OnUntrusted = src.Trust.OnUntrusted
	}
	if src.Trust.RequireEnvBinding {
		dst.Trust.RequireEnvBinding = true
	}
	if len(src.Trust.Keys) > 0 {
		dst.Trust.Keys = src.Trust.Keys
	}
	if src.Headers != (dst.Headers) && src.Headers != (Config{}).Headers {
		dst.Headers = src.Headers
	}
	if src.LoadTest.Enabled != nil {
		dst.LoadTest = src.LoadTest
	}
	if len(src.Outbound.Allow) > 0 {
		dst.Outbound.Allow = src.Outbound.Allow
	}
	if len(src.Outbound.Mocks) > 0 {
		dst.Outbound.Mocks = src.Outbound.Mocks
	}
	if src.Admin.Addr != "" {
		dst.Admin = src.Admin
	}
	if src.Reload != nil {
		dst.Reload = src.Reload
	}
	if src.InstallPropagator != nil {
		dst.InstallPropagator = src.InstallPropagator
	}
	if !src.Routing.IsZero() {
		dst.Routing = src.Routing
	}
	if !reflect.DeepEqual(src.Limits, LimitsConfig{}) {
		dst.Limits = src.Limits
	}
	if src.Redis != (RedisConfig{}) {
		dst.Redis = src.Redis
	}
	if src.Evidence != (EvidenceConfig{}) {
		dst.Evidence = src.Evidence
	}
}

// InstallPropagator sets the global OpenTelemetry propagator to
// TraceContext + Baggage (or the app's current propagator, when it set one)
// followed by rt's mark propagator.
func InstallPropagator(rt *Runtime) {
	cur := otel.GetTextMapPropagator()
	base := cur
	if len(cur.Fields()) == 0 { // the default no-op composite: nothing installed yet
		base = otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{})
	}
	otel.SetTextMapPropagator(otelprop.NewCompositeTextMapPropagator(base, rt.Propagator()))
}
