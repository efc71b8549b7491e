package shadowlane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

const secret = "0123456789abcdef0123456789abcdef"

func edgeConfig() shadowlane.Config {
	return shadowlane.Config{Service: "gw", Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}}}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	no := false
	_ = no
	c := shadowlane.Config{
		Env:      "bad env",
		Trust:    shadowlane.TrustConfig{Mode: "sometimes", OnUntrusted: "ignore", Keys: []shadowlane.KeyConfig{{ID: "k.1", Secret: "short"}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"https://x.com/a"}, Mocks: []shadowlane.MockConfig{{Host: "pay", Path: "v1", Status: 999}}},
		Admin:    shadowlane.AdminConfig{Addr: "0.0.0.0:9000"},
	}
	err := c.Validate()
	if !errors.Is(err, shadowlane.ErrConfig) {
		t.Fatalf("got %v", err)
	}
	for _, f := range []string{"config env", "trust.mode", "trust.onUntrusted", "trust.keys[0].id", "trust.keys[0].secret",
		"outbound.allow[0]", "outbound.mocks[0].path", "outbound.mocks[0].status", "admin.token"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not name %s:\n%v", f, err)
		}
	}
	var fe *shadowlane.FieldError
	if !errors.As(err, &fe) {
		t.Error("not a FieldError")
	}
	// edge mode without keys is valid (absent, not invalid): it starts,
	// fails closed and says so
	if err := (&shadowlane.Config{}).Validate(); err != nil {
		t.Errorf("edge without keys: %v", err)
	}
	if err := (&shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}}).Validate(); err != nil {
		t.Errorf("internal without keys: %v", err)
	}
}

func TestInitFileEnvAndReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shadowlane.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"service": "orders", "trust": {"mode": "internal"}, "loadTest": {"enabled": true}, "reload": "100ms"}`)
	env := map[string]string{"SHADOWLANE_CONFIG": file, "SHADOWLANE_ENV": "proj-a", "SHADOWLANE_ALLOW": "inventory:8080, *.internal"}
	logs := &lockedBuffer{}
	rt, err := shadowlane.Init(shadowlane.WithGetenv(func(k string) string { return env[k] }), shadowlane.WithoutDefault(),
		shadowlane.WithoutPropagator(), shadowlane.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if c := rt.Config(); c.Service != "orders" || c.Env != "proj-a" || len(c.Outbound.Allow) != 2 {
		t.Fatalf("merged config: %+v", c)
	}
	// an invalid file keeps the old config and says why
	write(`{"service": "orders", "trust": {"mode": "sometimes"}, "reload": "100ms"}`)
	waitFor(t, func() bool { s := rt.Stats(); return s.LastReload != nil && s.LastReload.Error != "" })
	if rt.Trust() != propagation.Internal || !strings.Contains(rt.Stats().LastReload.Error, "trust.mode") {
		t.Fatalf("bad reload changed config: %v / %+v", rt.Trust(), rt.Stats().LastReload)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "keeping the previous config") })
	// a valid change applies, including the kill switch
	write(`{"service": "orders", "trust": {"mode": "internal"}, "loadTest": {"enabled": false, "reason": "incident 42"}, "reload": "100ms"}`)
	waitFor(t, func() bool { on, _ := rt.LoadTestEnabled(); return !on })
	if _, reason := rt.LoadTestEnabled(); reason != "incident 42" {
		t.Fatalf("reason %q", reason)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func admit(t *testing.T, rt *shadowlane.Runtime, h http.Header) (propagation.Mark, *shadowlane.Refusal) {
	t.Helper()
	ctx, ref := rt.Admit(context.Background(), nil, h)
	return propagation.FromContext(ctx), ref
}

func TestAdmitEdgeTrustAndKillSwitch(t *testing.T) {
	rt, err := shadowlane.New(edgeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tok, _ := rt.Keyring().Sign("r1", "", time.Now().Add(time.Hour))
	signed := http.Header{"X-Shadowlane-Run": {"r1"}, "X-Shadowlane-Token": {tok}}
	forged := http.Header{"X-Shadowlane-Run": {"r1"}, "X-Shadowlane-Token": {tok[:len(tok)-2] + "AA"}}
	if m, ref := admit(t, rt, signed); ref != nil || m.Run != "r1" {
		t.Fatalf("signed: %v %v", m, ref)
	}
	// default (trust.onUntrusted unset = reject): forged refused with 403
	if _, ref := admit(t, rt, forged); ref == nil || ref.HTTPStatus != 403 || ref.GRPCCode != 7 || !errors.Is(ref.Err, propagation.ErrUntrusted) {
		t.Fatalf("forged must be refused by default: %+v", ref)
	}
	if m, ref := admit(t, rt, http.Header{"X-Shadowlane-Env": {"proj-a"}}); ref != nil || m.Env != "proj-a" {
		t.Fatalf("env only: %v %v", m, ref)
	}
	if s := rt.Stats(); s.TokensRejected["bad_signature"] != 1 || s.UntrustedRefused != 1 {
		t.Fatalf("stats: %+v", rt.Stats())
	}
	// strip, by explicit choice: forged continues as production, and a mark
	// a propagator put into the context from the same carrier is replaced
	// by the entry's own decision
	sc := edgeConfig()
	sc.Trust.OnUntrusted = "strip"
	if err := rt.Apply(sc); err != nil {
		t.Fatal(err)
	}
	if m, ref := admit(t, rt, forged); ref != nil || !m.IsZero() {
		t.Fatalf("strip: forged must continue as production: %v %v", m, ref)
	}
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	ctx, _ = rt.Admit(ctx, nil, forged)
	if !propagation.FromContext(ctx).IsZero() {
		t.Fatal("entry kept a mark it did not admit")
	}
	// kill switch: signed load-test refused with 503, production untouched
	rt.SetLoadTest(false, "black friday")
	_, ref := admit(t, rt, signed)
	if ref == nil || ref.HTTPStatus != 503 || ref.GRPCCode != 14 || !errors.Is(ref.Err, shadow.ErrKillSwitch) || !strings.Contains(ref.Body(), "black friday") {
		t.Fatalf("kill switch: %+v", ref)
	}
	if m, ref := admit(t, rt, http.Header{}); ref != nil || !m.IsZero() {
		t.Fatal("production refused by the kill switch")
	}
	rt.SetLoadTest(true, "")
	// reject mode
	c := edgeConfig()
	c.Trust.OnUntrusted = "reject"
	if err := rt.Apply(c); err != nil {
		t.Fatal(err)
	}
	if _, ref := admit(t, rt, forged); ref == nil || ref.HTTPStatus != 403 || !errors.Is(ref.Err, propagation.ErrUntrusted) {
		t.Fatalf("reject: %+v", ref)
	}
	// unmarked admission allocates nothing
	plain := http.Header{"Accept": {"*/*"}}
	bg := context.Background()
	if n := testing.AllocsPerRun(200, func() { rt.Admit(bg, nil, plain) }); n != 0 {
		t.Fatalf("unmarked Admit allocates %v", n)
	}
}

func TestUninitialisedDefaultFailsClosed(t *testing.T) {
	rt := shadowlane.Default()
	_, ref := admit(t, rt, http.Header{"X-Shadowlane-Run": {"r1"}})
	if ref == nil || ref.HTTPStatus != 403 {
		t.Fatalf("load-test mark without Init must be refused, got %+v", ref)
	}
	if m, ref := admit(t, rt, http.Header{}); ref != nil || !m.IsZero() {
		t.Fatal("production must flow without Init")
	}
}

func TestOutbound(t *testing.T) {
	c := edgeConfig()
	c.Outbound = shadowlane.OutboundConfig{
		Allow: []string{"inventory", "*.internal", "10.0.0.0/8", "127.0.0.1:9000"},
		Mocks: []shadowlane.MockConfig{{Host: "pay.example.com", Path: "/v1/*", Method: "post", Status: 201, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"ok":true}`}},
	}
	rt, err := shadowlane.New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	call := func(ctx context.Context, method, url string) (*http.Response, error) {
		req := httptest.NewRequest(method, url, nil)
		return rt.Outbound(ctx, req)
	}
	for _, u := range []string{"http://inventory:8080/x", "http://a.b.internal/x", "http://10.1.2.3/", "http://127.0.0.1:9000/"} {
		if resp, err := call(lt, "GET", u); resp != nil || err != nil {
			t.Errorf("%s: want allow, got %v %v", u, resp, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:9001/", "http://evil.com/", "http://internal/", "http://pay.example.com/v2/charge"} {
		_, err := call(lt, "GET", u)
		var se *shadow.Error
		if !errors.Is(err, shadow.ErrBlocked) || !errors.As(err, &se) || se.Store != "http" {
			t.Errorf("%s: want blocked, got %v", u, err)
		}
	}
	resp, err := call(lt, "POST", "http://pay.example.com/v1/charge")
	if err != nil || resp == nil || resp.StatusCode != 201 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("mock: %v %v", resp, err)
	}
	// production is never affected
	if resp, err := call(context.Background(), "GET", "http://evil.com/"); resp != nil || err != nil {
		t.Fatal("production outbound was touched")
	}
	if s := rt.Stats(); s.Outbound["block|evil.com"] != 1 || s.Outbound["mock|pay.example.com"] != 1 {
		t.Fatalf("outbound stats %v", s.Outbound)
	}
}

func TestAdminEndpoint(t *testing.T) {
	c := edgeConfig()
	c.Admin = shadowlane.AdminConfig{Addr: "127.0.0.1:0", Token: "admin-token-123456"}
	rt, err := shadowlane.Init(shadowlane.WithConfig(c), shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	base := "http://" + rt.AdminAddr()
	req, _ := http.NewRequest("POST", base+"/shadowlane/loadtest?enabled=false&reason=drill", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer admin-token-123456")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if on, reason := rt.LoadTestEnabled(); resp.StatusCode != 200 || on || reason != "drill" {
		t.Fatalf("kill switch via admin: %d %v %q", resp.StatusCode, on, reason)
	}
	req, _ = http.NewRequest("GET", base+"/shadowlane/status", nil)
	req.Header.Set("Authorization", "Bearer admin-token-123456")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s shadowlane.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || s.LoadTestEnabled {
		t.Fatalf("status: %+v %v", s, err)
	}
}

func TestLogHandlerAndMetrics(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(shadowlane.LogHandler(slog.NewJSONHandler(&buf, nil)))
	log.InfoContext(propagation.With(context.Background(), propagation.Mark{Run: "r1", Env: "proj-a"}), "marked")
	log.InfoContext(context.Background(), "plain")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"shadowlane.run":"r1"`) || !strings.Contains(lines[0], `"shadowlane.env":"proj-a"`) || strings.Contains(lines[1], "shadowlane") {
		t.Fatalf("logs:\n%s", buf.String())
	}

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	rt, err := shadowlane.New(edgeConfig(), shadowlane.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	rt.Admit(context.Background(), nil, http.Header{})
	rt.Admit(context.Background(), nil, http.Header{"X-Shadowlane-Run": {"bad run"}})
	rt.Admit(context.Background(), nil, http.Header{"X-Shadowlane-Run": {"r1"}})
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	// the two untrusted load-test requests are refused (not served, so not
	// counted as requests), each counted as a rejected token
	if got["shadowlane.requests"] != 1 || got["shadowlane.marks.dropped"] != 1 || got["shadowlane.tokens.rejected"] != 2 {
		t.Fatalf("metrics: %v", got)
	}
}
