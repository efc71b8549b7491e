package shadowlane_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestValidateRefusesDangerousSettings(t *testing.T) {
	d := func(s string) *time.Duration { v, _ := time.ParseDuration(s); return &v }
	internal := shadowlane.TrustConfig{Mode: "internal"}
	for _, tc := range []struct {
		name  string
		cfg   shadowlane.Config
		field string
	}{
		{"allow star", shadowlane.Config{Trust: internal, Outbound: shadowlane.OutboundConfig{Allow: []string{"orders", " * "}}}, "outbound.allow[1]"},
		{"allow every IPv4", shadowlane.Config{Trust: internal, Outbound: shadowlane.OutboundConfig{Allow: []string{"0.0.0.0/0"}}}, "outbound.allow[0]"},
		{"allow every IPv6", shadowlane.Config{Trust: internal, Outbound: shadowlane.OutboundConfig{Allow: []string{"::/0"}}}, "outbound.allow[0]"},
		{"allow star dot star", shadowlane.Config{Trust: internal, Outbound: shadowlane.OutboundConfig{Allow: []string{"*.*"}}}, "outbound.allow[0]"},
		{"run and env header collide", shadowlane.Config{Trust: internal, Headers: propagation.Names{RunHeader: "X-Mark", EnvHeader: "x-mark"}}, "headers.env"},
		{"token header is the default run header", shadowlane.Config{Trust: internal, Headers: propagation.Names{TokenHeader: "x-shadowlane-run"}}, "headers.token"},
		{"run header is baggage", shadowlane.Config{Trust: internal, Headers: propagation.Names{RunHeader: "baggage"}}, "headers.run"},
		{"env header is Baggage", shadowlane.Config{Trust: internal, Headers: propagation.Names{EnvHeader: "Baggage"}}, "headers.env"},
		{"equal members", shadowlane.Config{Trust: internal, Headers: propagation.Names{RunMember: "lt", EnvMember: "lt"}}, "headers.envMember"},
		{"token member is the default run member", shadowlane.Config{Trust: internal, Headers: propagation.Names{TokenMember: "shadowlane.run"}}, "headers.tokenMember"},
		{"reload 1ns", shadowlane.Config{Trust: internal, Reload: d("1ns")}, "reload"},
		{"reload 99ms", shadowlane.Config{Trust: internal, Reload: d("99ms")}, "reload"},
		{"long reason", shadowlane.Config{Trust: internal, LoadTest: shadowlane.LoadTestConfig{Reason: strings.Repeat("x", shadowlane.MaxReasonLen+1)}}, "loadTest.reason"},
		{"admin host with port", shadowlane.Config{Trust: internal, Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:0", Hosts: []string{"admin:80"}}}, "admin.hosts[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var fe *shadowlane.FieldError
			if !errors.Is(err, shadowlane.ErrConfig) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "config "+tc.field+":") {
				t.Fatalf("want a FieldError for %s, got %v", tc.field, err)
			}
		})
	}
	for _, ok := range []shadowlane.Config{
		{Trust: internal, Reload: d("100ms")},
		{Trust: internal, Reload: d("0s")},
		{Trust: internal, Outbound: shadowlane.OutboundConfig{Allow: []string{"10.0.0.0/8", "*.svc.cluster.local"},
			Mocks: []shadowlane.MockConfig{{Host: "*", Status: 200}}}},
		{Trust: internal, Headers: propagation.Names{RunHeader: "X-Run", EnvHeader: "X-Env", TokenHeader: "X-Tok", RunMember: "r", EnvMember: "e", TokenMember: "t"}},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("valid config refused: %v", err)
		}
	}
}

func TestOversizedConfigFileRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "big.yaml")
	big := "service: s\n# " + strings.Repeat("x", shadowlane.MaxConfigFileSize) + "\n"
	if err := os.WriteFile(file, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := shadowlane.LoadFile(file); !errors.Is(err, shadowlane.ErrConfig) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("LoadFile: %v", err)
	}
	_, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }))
	if !errors.Is(err, shadowlane.ErrConfig) {
		t.Fatalf("Init: %v", err)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Reload merges the file with the options Init was given: WithConfig's
// fields the file leaves out, WithEdit's changes, and WithGetenv's
// variables (a key read through secretEnv exists only there).
func TestReloadKeepsInitOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	writeFile(t, file, "service: orders\ntrust:\n  keys: [{id: k1, secretEnv: ONLY_IN_GETENV}]\nreload: 0s\n")
	env := map[string]string{"ONLY_IN_GETENV": secret, "SHADOWLANE_ENV": "proj-a"}
	base := shadowlane.Config{Outbound: shadowlane.OutboundConfig{Allow: []string{"inventory:8080"}}}
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithConfig(base),
		shadowlane.WithEdit(func(c *shadowlane.Config) { c.Service += "-edited" }),
		shadowlane.WithGetenv(func(k string) string { return env[k] }),
		shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(), shadowlane.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	writeFile(t, file, "service: payments\ntrust:\n  keys: [{id: k2, secretEnv: ONLY_IN_GETENV}]\nreload: 0s\n")
	if err := rt.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	c := rt.Config()
	if c.Service != "payments-edited" || c.Env != "proj-a" || len(c.Outbound.Allow) != 1 || c.Trust.Keys[0].ID != "k2" {
		t.Fatalf("reloaded config lost Init's options: %+v", c)
	}
	if rt.Keyring() == nil {
		t.Fatal("no keyring after reload")
	}
}

// markedAdmitted hammers rt with load-test requests until stop closes and
// counts the ones admitted as load-test traffic.
func markedAdmitted(rt *shadowlane.Runtime, stop <-chan struct{}) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		h := http.Header{"X-Shadowlane-Run": {"run-9"}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, ref := rt.Admit(context.Background(), nil, h)
			if ref == nil && propagation.FromContext(ctx).Run != "" {
				n.Add(1)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	return &n
}

// TestPartialWriteNeverTurnsLoadTestsOn rewrites the config in place the
// way an editor or `cat > file` does (truncate, write a part, pause, write
// the rest) with the file saying loadTest.enabled: false all along, and
// cuts it at every line and in the middle of the kill switch's own line.
// The pauses are long enough for the watcher to apply some halves (they
// are valid YAML); none of them may admit a load-test request.
func TestPartialWriteNeverTurnsLoadTestsOn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	full := "service: orders\ntrust:\n  mode: internal\noutbound:\n  allow: [inventory]\nloadTest:\n  enabled: false\n  reason: frozen\nreload: 100ms\n"
	writeFile(t, file, full)
	logs := &lockedBuffer{}
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if on, _ := rt.LoadTestEnabled(); on {
		t.Fatal("load tests on at start")
	}
	stop := make(chan struct{})
	admitted := markedAdmitted(rt, stop)
	defer close(stop)
	var cuts []int
	for i := range len(full) {
		if full[i] == '\n' {
			cuts = append(cuts, i+1)
		}
	}
	e := strings.Index(full, "enabled: ") + len("enabled: ")
	cuts = append(cuts, e-1, e, e+1, e+3)
	for i, cut := range cuts {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(full[:cut])
		pause := 50 * time.Millisecond
		if i%2 == 0 {
			pause = 350 * time.Millisecond // > 2 polls: the half is stable and gets applied when valid
		}
		time.Sleep(pause)
		f.WriteString(full[cut:])
		f.Close()
		if n := admitted.Load(); n != 0 {
			t.Fatalf("cut at %d (%q): %d load-test requests admitted while the file says enabled: false", cut, full[:cut], n)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := admitted.Load(); n != 0 {
		t.Fatalf("%d load-test requests admitted while the file says enabled: false", n)
	}
	t.Logf("%d cuts, %d partial files applied by the watcher, %d refused", len(cuts),
		strings.Count(logs.String(), "config reloaded"), strings.Count(logs.String(), "reload failed"))
	// Whatever the timing above, apply one torn file for sure: valid YAML
	// cut just before the loadTest section.
	writeFile(t, file, full[:strings.Index(full, "loadTest:")])
	if err := rt.Reload(); err != nil {
		t.Fatalf("the torn file is valid YAML: %v", err)
	}
	if on, _ := rt.LoadTestEnabled(); on || admitted.Load() != 0 {
		t.Fatalf("a file without loadTest.enabled turned load tests on (%d admitted)", admitted.Load())
	}
}

// TestKillSwitchPrecedence: "off" through the API or the admin endpoint
// holds over reloads that say on; config "off" always applies; config "on"
// undoes only a config "off"; an absent key changes nothing.
func TestKillSwitchPrecedence(t *testing.T) {
	cfg := func(enabled string) shadowlane.Config {
		c := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}}
		switch enabled {
		case "on", "off":
			v := enabled == "on"
			c.LoadTest.Enabled = &v
		}
		return c
	}
	rt, err := shadowlane.New(cfg("on"), shadowlane.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	state := func(want bool, by string) {
		t.Helper()
		on, _ := rt.LoadTestEnabled()
		if s := rt.Stats(); on != want || s.LoadTestBy != by {
			t.Fatalf("enabled %v by %q, want %v by %q", on, s.LoadTestBy, want, by)
		}
	}
	apply := func(c shadowlane.Config) {
		t.Helper()
		if err := rt.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	state(true, "config")
	rt.SetLoadTest(false, "incident")
	apply(cfg("off"))
	apply(cfg("on")) // the config changed to on, but the API's off holds
	state(false, "api")
	apply(cfg(""))
	state(false, "api")
	rt.SetLoadTest(true, "")
	state(true, "api")
	apply(cfg("off"))
	state(false, "config")
	apply(cfg("")) // absent: no change
	state(false, "config")
	apply(cfg("on"))
	state(true, "config")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type adminCall struct {
	method, addr, path, host, token, origin string
	custom                                  bool
}

func (c adminCall) do(t *testing.T) (int, error) {
	t.Helper()
	req, err := http.NewRequest(c.method, "http://"+c.addr+c.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.custom {
		req.Header.Set(shadowlane.AdminHeader, "1")
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestAdminReloadMovesOrRefuses: a reload that changes admin: takes effect
// fully (the new listener serves with the new settings, the old one is
// closed) or is refused with the reason and changes nothing.
func TestAdminReloadMovesOrRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shadowlane.yaml")
	const tok = "admin-token-123456"
	first := freeAddr(t)
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\nadmin:\n  addr: "+first+"\n  token: "+tok+"\n")
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	kill := adminCall{method: "POST", addr: first, path: "/shadowlane/loadtest?enabled=false"}
	if code, err := kill.do(t); err != nil || code != 401 {
		t.Fatalf("anonymous POST with a token configured: %d %v", code, err)
	}

	// 1. Token removed and the endpoint moved (loopback): the old listener
	// is gone, the new one serves without the token but still wants the
	// custom header for a state change.
	second := freeAddr(t)
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\nadmin:\n  addr: "+second+"\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if rt.AdminAddr() != second {
		t.Fatalf("AdminAddr %q, want %q", rt.AdminAddr(), second)
	}
	if code, err := kill.do(t); err == nil {
		t.Fatalf("old listener still answers (%d) after admin.addr moved", code)
	}
	if code, _ := (adminCall{method: "POST", addr: second, path: "/shadowlane/loadtest?enabled=false"}).do(t); code != 403 {
		t.Fatalf("POST without the custom header: %d", code)
	}
	if on, _ := rt.LoadTestEnabled(); !on {
		t.Fatal("refused POST switched load tests off")
	}

	// 2. Moving to an address in use is refused with the reason; the
	// endpoint and the config stay as they were.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	writeFile(t, file, "service: changed\ntrust: {mode: internal}\nreload: 0s\nadmin:\n  addr: "+busy.Addr().String()+"\n")
	err = rt.Reload()
	if err == nil || !strings.Contains(err.Error(), "admin.addr") || !strings.Contains(err.Error(), "stays on "+second) {
		t.Fatalf("reload onto a busy port: %v", err)
	}
	if rt.AdminAddr() != second || rt.Config().Service == "changed" || rt.Stats().LastReload.Error == "" {
		t.Fatalf("refused reload changed things: addr %q service %q", rt.AdminAddr(), rt.Config().Service)
	}
	if code, _ := (adminCall{method: "GET", addr: second, path: "/shadowlane/status"}).do(t); code != 200 {
		t.Fatalf("endpoint after a refused reload: %d", code)
	}

	// 3. A public address without a token is invalid: refused, the token
	// stays required where it was.
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\nadmin:\n  addr: "+second+"\n  token: "+tok+"\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\nadmin:\n  addr: 0.0.0.0:0\n")
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("public admin without token: %v", err)
	}
	if code, _ := (adminCall{method: "POST", addr: second, path: "/shadowlane/loadtest?enabled=false", custom: true}).do(t); code != 401 {
		t.Fatalf("token no longer required after a refused reload: %d", code)
	}

	// 4. The admin section removed: the endpoint closes.
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if rt.AdminAddr() != "" {
		t.Fatalf("AdminAddr %q after admin: was removed", rt.AdminAddr())
	}
	if code, err := (adminCall{method: "GET", addr: second, path: "/shadowlane/status", token: tok}).do(t); err == nil {
		t.Fatalf("listener still answers (%d) after admin: was removed", code)
	}
	if on, _ := rt.LoadTestEnabled(); !on {
		t.Fatal("load tests switched off by a refused request")
	}

	// 5. The admin section added back: a listener starts, with the token.
	third := freeAddr(t)
	writeFile(t, file, "trust: {mode: internal}\nreload: 0s\nadmin:\n  addr: "+third+"\n  token: "+tok+"\n")
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, err := (adminCall{method: "POST", addr: third, path: "/shadowlane/loadtest?enabled=false", custom: true}).do(t); err != nil || code != 401 {
		t.Fatalf("re-added endpoint without the token: %d %v", code, err)
	}
	if code, err := (adminCall{method: "POST", addr: third, path: "/shadowlane/loadtest?enabled=false", token: tok}).do(t); err != nil || code != 200 {
		t.Fatalf("re-added endpoint with the token: %d %v", code, err)
	}
	if on, _ := rt.LoadTestEnabled(); on {
		t.Fatal("admin off did not switch load tests off")
	}
}

// TestAdminHostOriginAndReason: the DNS-rebinding guard (Host), the
// cross-site guards (custom header, Origin) and the reason cap.
func TestAdminHostOriginAndReason(t *testing.T) {
	c := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"},
		Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:0", Hosts: []string{"Shop-Admin.internal"}}}
	rt, err := shadowlane.Init(shadowlane.WithConfig(c), shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(),
		shadowlane.WithoutPropagator(), shadowlane.WithGetenv(func(string) string { return "" }), shadowlane.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	addr := rt.AdminAddr()
	_, port, _ := net.SplitHostPort(addr)
	off := "/shadowlane/loadtest?enabled=false&reason=" + url.QueryEscape("planned")
	for _, tc := range []struct {
		name string
		call adminCall
		want int
	}{
		{"rebinding Host GET", adminCall{method: "GET", path: "/shadowlane/status", host: "attacker.example:" + port}, 403},
		{"rebinding Host POST", adminCall{method: "POST", path: off, host: "attacker.example", custom: true}, 403},
		{"localhost", adminCall{method: "GET", path: "/shadowlane/status", host: "localhost:" + port}, 200},
		{"IPv6 literal", adminCall{method: "GET", path: "/shadowlane/status", host: "[::1]:" + port}, 200},
		{"configured name", adminCall{method: "GET", path: "/shadowlane/status", host: "shop-admin.internal:" + port}, 200},
		{"form POST (no custom header)", adminCall{method: "POST", path: off}, 403},
		{"cross-site Origin", adminCall{method: "POST", path: off, custom: true, origin: "http://attacker.example"}, 403},
		{"other local origin", adminCall{method: "POST", path: off, custom: true, origin: "http://127.0.0.1:1"}, 403},
		{"reason too long", adminCall{method: "POST", path: "/shadowlane/loadtest?enabled=false&reason=" + strings.Repeat("r", shadowlane.MaxReasonLen+1), custom: true}, 400},
	} {
		tc.call.addr = addr
		code, err := tc.call.do(t)
		if err != nil || code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, err, tc.want)
		}
		if on, _ := rt.LoadTestEnabled(); !on {
			t.Fatalf("%s switched load tests off", tc.name)
		}
	}
	// same-origin with the custom header works, and the "off" latches
	if code, err := (adminCall{method: "POST", addr: addr, path: off, custom: true, origin: "http://" + addr}).do(t); err != nil || code != 200 {
		t.Fatalf("same-origin POST: %d %v", code, err)
	}
	if on, reason := rt.LoadTestEnabled(); on || reason != "planned" || rt.Stats().LoadTestBy != "admin" {
		t.Fatalf("after admin off: %v %q by %q", on, reason, rt.Stats().LoadTestBy)
	}
	v := true
	c.LoadTest.Enabled = &v
	if err := rt.Apply(c); err != nil {
		t.Fatal(err)
	}
	if on, _ := rt.LoadTestEnabled(); on {
		t.Fatal("a config saying on undid the admin endpoint's off")
	}
}
