package shadowlane

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

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
	cfg, err := loadMerged(o, file, getenv)
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
	if st.cfg.Admin.Addr != "" {
		if err := rt.startAdmin(st.cfg.Admin.Addr); err != nil {
			rt.Close()
			return nil, err
		}
	}
	if file != "" && st.reload > 0 {
		rt.watch(o, file, getenv, st.reload)
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

func loadMerged(o *options, file string, getenv func(string) string) (Config, error) {
	var cfg Config
	if o.cfg != nil {
		cfg = *o.cfg
	}
	if file != "" {
		fc, err := LoadFile(file)
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

// Reload re-reads the config file now. On error the old config stays and
// the error names the bad fields; the outcome shows in Stats().LastReload.
func (rt *Runtime) Reload() error {
	if rt.file == "" {
		return errors.New("shadowlane: no config file to reload")
	}
	return rt.reloadFrom(&options{}, rt.file, os.Getenv)
}

func (rt *Runtime) reloadFrom(o *options, file string, getenv func(string) string) error {
	cfg, err := loadMerged(o, file, getenv)
	if err == nil {
		err = rt.Apply(cfg)
	}
	rt.reloadErr.Store(&reloadResult{at: rt.now(), err: err})
	if err != nil {
		rt.logger.Error("shadowlane: config reload failed; keeping the previous config", "file", file, "error", err)
		return err
	}
	rt.logger.Info("shadowlane: config reloaded", "file", file)
	return nil
}

func fileDigest(path string) ([32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// watch polls file every interval (no fsnotify in the core module: polling
// a small file is cheap and works on every filesystem and ConfigMap mount).
func (rt *Runtime) watch(o *options, file string, getenv func(string) string, every time.Duration) {
	last, _ := fileDigest(file)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d, err := fileDigest(file)
				if err != nil || d == last {
					continue
				}
				last = d
				_ = rt.reloadFrom(o, file, getenv)
			}
		}
	}()
	rt.AddCloser(func() error { close(stop); <-done; return nil })
}

// AdminHandler serves the admin API:
//
//	GET  /shadowlane/status                           runtime stats as JSON
//	POST /shadowlane/loadtest?enabled=false&reason=…  the kill switch
//	GET  /shadowlane/limits/                          live flow-control page (?format=json for the JSON view)
//
// When an admin token is configured every request must carry
// "Authorization: Bearer <token>".
func (rt *Runtime) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shadowlane/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rt.Stats())
	})
	mux.Handle("/shadowlane/limits/", http.StripPrefix("/shadowlane/limits", rt.LimitsHandler()))
	mux.HandleFunc("POST /shadowlane/loadtest", func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query().Get("enabled")
		on, err := strconv.ParseBool(v)
		if err != nil {
			http.Error(w, "enabled must be true or false", http.StatusBadRequest)
			return
		}
		rt.SetLoadTest(on, r.URL.Query().Get("reason"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"loadTestEnabled\":%t}\n", on)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := rt.st.Load().adminToken; tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				http.Error(w, "shadowlane admin: missing or wrong bearer token", http.StatusUnauthorized)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (rt *Runtime) startAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("shadowlane: admin endpoint: %w", err)
	}
	srv := &http.Server{Handler: rt.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	rt.adminAddr.Store(ln.Addr().String())
	rt.AddCloser(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return nil
}

// AdminAddr returns the address the admin endpoint listens on ("" when off).
func (rt *Runtime) AdminAddr() string {
	if a := rt.adminAddr.Load(); a != nil {
		return a.(string)
	}
	return ""
}
