package middleware_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// rawGet sends a GET with exactly these header lines (letter case and
// repetition kept, as a hand-written client or a hop may send them) and
// returns the status and body.
func rawGet(t *testing.T, base string, lines ...string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString("GET / HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n")
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// recorder is a handler that records the mark and the headers the app sees.
type recorder struct {
	mu   sync.Mutex
	n    int
	mark propagation.Mark
	hdr  http.Header
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	rc.n++
	rc.mark = propagation.FromContext(r.Context())
	rc.hdr = r.Header.Clone()
	rc.mu.Unlock()
	fmt.Fprint(w, rc.mark.String())
}

func (rc *recorder) last() (int, propagation.Mark, http.Header) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.n, rc.mark, rc.hdr
}

// carriers lists the mark carriers left in h (any case, baggage members).
func carriers(h http.Header) []string {
	var out []string
	for k, v := range h {
		lk := strings.ToLower(k)
		lk = strings.TrimPrefix(lk, "grpc-metadata-")
		switch lk {
		case "x-shadowlane-run", "x-shadowlane-env", "x-shadowlane-token":
			out = append(out, k)
		case "baggage":
			for _, line := range v {
				if strings.Contains(line, "shadowlane.") {
					out = append(out, k+": "+line)
				}
			}
		}
	}
	return out
}

func edgeRuntime(t *testing.T, edit func(*shadowlane.Config), opts ...shadowlane.Option) *shadowlane.Runtime {
	t.Helper()
	c := shadowlane.Config{Service: "gw", Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"127.0.0.1"}}}
	if edit != nil {
		edit(&c)
	}
	rt, err := shadowlane.New(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// Items 1 and 2 (issue 21): a valid token alone carries its mark; any
// load-test indicator that fails verification is refused (403 with the
// reason), on any line and in any letter case, counted and logged without
// flooding. Production and env-only traffic pass.
func TestEdgeTokenOnlyAndDefaultRefusal(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	rt := edgeRuntime(t, nil, shadowlane.WithLogger(logger))
	rec := &recorder{}
	srv := httptest.NewServer(middleware.Handler(rec, middleware.WithRuntime(rt)))
	defer srv.Close()
	kr := rt.Keyring()
	exp := time.Now().Add(time.Hour)
	tok, _ := kr.Sign("r1", "", exp)
	envTok, _ := kr.Sign("r1", "proj-a", exp)
	otherTok, _ := kr.Sign("r2", "", exp)
	expired, _ := kr.Sign("r1", "", time.Now().Add(-time.Second))

	accepted := []struct {
		name  string
		lines []string
		want  propagation.Mark
	}{
		{"production", nil, propagation.Mark{}},
		{"env only", []string{"X-Shadowlane-Env: proj-b"}, propagation.Mark{Env: "proj-b"}},
		{"application baggage", []string{"Baggage: userId=alice"}, propagation.Mark{}},
		{"token only", []string{"X-Shadowlane-Token: " + tok}, propagation.Mark{Run: "r1"}},
		{"token only, lowercase", []string{"x-shadowlane-token: " + tok}, propagation.Mark{Run: "r1"}},
		{"env-bound token only", []string{"X-Shadowlane-Token: " + envTok}, propagation.Mark{Run: "r1", Env: "proj-a"}},
		{"unbound token + env", []string{"X-Shadowlane-Token: " + tok, "X-Shadowlane-Env: proj-b"}, propagation.Mark{Run: "r1", Env: "proj-b"}},
		{"token in baggage only", []string{"Baggage: a=1,shadowlane.token=" + tok}, propagation.Mark{Run: "r1"}},
		{"run + token on repeated identical lines", []string{"X-Shadowlane-Run: r1", "x-shadowlane-run: r1", "X-Shadowlane-Token: " + tok}, propagation.Mark{Run: "r1"}},
	}
	for _, tc := range accepted {
		code, body := rawGet(t, srv.URL, tc.lines...)
		_, m, h := rec.last()
		if code != 200 || m != tc.want {
			t.Errorf("%s: %d %q, handler saw %v, want %v", tc.name, code, body, m, tc.want)
		}
		if c := carriers(h); len(c) > 0 {
			t.Errorf("%s: the handler still sees mark carriers %v", tc.name, c)
		}
	}
	refused := []struct {
		name   string
		lines  []string
		reason string
	}{
		{"run without token", []string{"X-Shadowlane-Run: r1"}, "missing"},
		{"lowercase run without token", []string{"x-shadowlane-run: r1"}, "missing"},
		{"expired token", []string{"X-Shadowlane-Run: r1", "X-Shadowlane-Token: " + expired}, "expired"},
		{"expired token alone", []string{"X-Shadowlane-Token: " + expired}, "expired"},
		{"tampered token", []string{"X-Shadowlane-Token: " + tok[:len(tok)-2] + "AA"}, "bad_signature"},
		{"token of another run", []string{"X-Shadowlane-Run: r1", "X-Shadowlane-Token: " + otherTok}, "mismatch"},
		{"run header disagreeing with the token", []string{"X-Shadowlane-Run: r9", "X-Shadowlane-Token: " + tok}, "mismatch"},
		{"env header disagreeing with the env-bound token", []string{"X-Shadowlane-Env: proj-b", "X-Shadowlane-Token: " + envTok}, "mismatch"},
		{"forged run on a second baggage line", []string{"X-Shadowlane-Token: " + tok, "Baggage: a=1", "Baggage: shadowlane.run=evil"}, "mismatch"},
		{"run header and a second baggage line disagreeing", []string{"X-Shadowlane-Run: r1", "X-Shadowlane-Token: " + tok, "Baggage: a=1", "Baggage: shadowlane.run=evil"}, "conflict"},
		{"baggage run without token on a second line", []string{"Baggage: a=1", "Baggage: shadowlane.run=r1"}, "missing"},
		{"second run line", []string{"X-Shadowlane-Run: r1", "X-SHADOWLANE-RUN: evil", "X-Shadowlane-Token: " + tok}, "conflict"},
		{"comma-joined run", []string{"X-Shadowlane-Run: r1, evil", "X-Shadowlane-Token: " + tok}, "conflict"},
		{"malformed run", []string{"X-Shadowlane-Run: r1;drop", "X-Shadowlane-Token: " + tok}, "malformed_mark"},
		{"grpc-gateway form", []string{"Grpc-Metadata-X-Shadowlane-Run: r1"}, "missing"},
	}
	n0, _, _ := rec.last()
	for _, tc := range refused {
		code, body := rawGet(t, srv.URL, tc.lines...)
		if code != 403 || !strings.Contains(body, "untrusted load-test mark") {
			t.Errorf("%s: %d %q, want 403 with the reason", tc.name, code, body)
		}
		if got := rt.Stats().TokensRejected[tc.reason]; got == 0 {
			t.Errorf("%s: reason %q not counted: %v", tc.name, tc.reason, rt.Stats().TokensRejected)
		}
	}
	if n, _, _ := rec.last(); n != n0 {
		t.Errorf("refused requests reached the handler %d times", n-n0)
	}
	if s := rt.Stats(); s.UntrustedRefused != int64(len(refused)) {
		t.Errorf("untrusted refused = %d, want %d", s.UntrustedRefused, len(refused))
	}
	// a flood of forged requests is counted in full but logged rate-limited
	for i := 0; i < 200; i++ {
		rawGet(t, srv.URL, "X-Shadowlane-Run: r1")
	}
	logMu.Lock()
	lines := strings.Count(logs.String(), "reason=missing")
	logMu.Unlock()
	if lines < 1 || lines > 3 {
		t.Errorf("forged flood logged %d times (want 1..3)", lines)
	}
	if got := rt.Stats().TokensRejected["missing"]; got < 200 {
		t.Errorf("flood counted %d", got)
	}
	// strip stays available as an explicit choice
	rt2 := edgeRuntime(t, func(c *shadowlane.Config) { c.Trust.OnUntrusted = "strip" })
	srv2 := httptest.NewServer(middleware.Handler(rec, middleware.WithRuntime(rt2)))
	defer srv2.Close()
	if code, body := rawGet(t, srv2.URL, "X-Shadowlane-Run: r1", "X-Shadowlane-Token: "+expired); code != 200 || body != "production" {
		t.Errorf("strip: %d %q", code, body)
	}
	if _, _, h := rec.last(); len(carriers(h)) > 0 {
		t.Errorf("strip: handler sees %v", carriers(h))
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Items 4 and 5: an edge whose handler is an httputil.ReverseProxy on
// http.DefaultTransport (it forwards every inbound header), and an app that
// copies inbound headers onto an outbound request through a hop that joins
// repeated header lines: no forged carrier reaches the internal entry behind
// them, in any letter case or line. The edge strips (explicit choice) so
// that the forged requests get through it at all.
func TestNoForgedMarkThroughProxies(t *testing.T) {
	internalRT, err := shadowlane.New(shadowlane.Config{Service: "svc", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer internalRT.Close()
	inner := &recorder{}
	internalSrv := httptest.NewServer(middleware.Handler(inner, middleware.WithRuntime(internalRT)))
	defer internalSrv.Close()
	// a hop that joins repeated header lines into one (as some proxies do)
	internalURL, _ := url.Parse(internalSrv.URL)
	joiner := httputil.NewSingleHostReverseProxy(internalURL)
	d := joiner.Director
	joiner.Director = func(r *http.Request) {
		d(r)
		for k, v := range r.Header {
			if len(v) > 1 {
				r.Header[k] = []string{strings.Join(v, ", ")}
			}
		}
	}
	joinSrv := httptest.NewServer(joiner)
	defer joinSrv.Close()

	edge := edgeRuntime(t, func(c *shadowlane.Config) { c.Trust.OnUntrusted = "strip" })
	// edge 1: the handler is a reverse proxy on http.DefaultTransport
	rp := httputil.NewSingleHostReverseProxy(internalURL)
	proxySrv := httptest.NewServer(middleware.Handler(rp, middleware.WithRuntime(edge)))
	defer proxySrv.Close()
	// edge 2: the handler copies the inbound headers onto its own call
	// through the joining hop, with the shadowlane Transport or without it
	joinURL, _ := url.Parse(joinSrv.URL)
	copier := func(rt http.RoundTripper) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", joinURL.String()+"/", nil)
			for k, v := range r.Header {
				req.Header[k] = append([]string(nil), v...)
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				http.Error(w, err.Error(), 502)
				return
			}
			defer resp.Body.Close()
			io.Copy(w, resp.Body)
		})
	}
	copyPlain := httptest.NewServer(middleware.Handler(copier(http.DefaultTransport), middleware.WithRuntime(edge)))
	defer copyPlain.Close()
	copyOurs := httptest.NewServer(middleware.Handler(copier(middleware.Transport(nil, middleware.WithRuntime(edge))), middleware.WithRuntime(edge)))
	defer copyOurs.Close()

	forged := [][]string{
		{"X-Shadowlane-Run: evil"},
		{"x-shadowlane-run: evil"},
		{"Baggage: shadowlane.run=evil"},
		{"Baggage: a=1", "Baggage: shadowlane.run=evil,shadowlane.env=proj-x"},
		{"Baggage: a=1", "baggage: b=2, shadowlane.run=evil"},
		{"X-Shadowlane-Env: proj-x", "X-Shadowlane-Run: evil", "X-Shadowlane-Token: v1.k1.evil..9999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"Grpc-Metadata-X-Shadowlane-Run: evil", "Grpc-Metadata-Baggage: shadowlane.run=evil"},
	}
	for _, s := range []*httptest.Server{proxySrv, copyPlain, copyOurs} {
		for _, lines := range forged {
			n0, _, _ := inner.last()
			code, body := rawGet(t, s.URL, lines...)
			n, m, h := inner.last()
			if code != 200 || n != n0+1 {
				t.Fatalf("%v: %d %q (reached internal: %v)", lines, code, body, n != n0)
			}
			if !m.IsZero() || body != "production" {
				t.Errorf("%v: internal entry honoured %v", lines, m)
			}
			if c := carriers(h); len(c) > 0 {
				t.Errorf("%v: internal app sees carriers %v", lines, c)
			}
			if lines[0] == "Baggage: a=1" && !strings.Contains(h.Get("Baggage"), "a=1") {
				t.Errorf("%v: application baggage lost: %q", lines, h.Values("Baggage"))
			}
		}
	}
	// the Transport alone: an unmarked call with a forged run on a second
	// Baggage line and a lowercase key, straight into the joining hop
	req, _ := http.NewRequest("GET", joinSrv.URL+"/", nil)
	req.Header["Baggage"] = []string{"a=1", "shadowlane.run=evil"}
	req.Header["x-shadowlane-run"] = []string{"evil"}
	resp, err := middleware.Transport(nil, middleware.WithRuntime(edge)).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, m, h := inner.last(); string(b) != "production" || !m.IsZero() || len(carriers(h)) > 0 {
		t.Errorf("transport: %q %v %v", b, m, carriers(h))
	}
}

// Item 14: Init with no configuration at all starts, refuses every
// load-test attempt at an edge, logs the warning once and shows it in
// /shadowlane/status; invalid configuration still fails.
func TestInitWithoutKeysFailsClosed(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	noEnv := shadowlane.WithGetenv(func(string) string { return "" })
	rt, err := shadowlane.Init(shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(), noEnv, shadowlane.WithLogger(logger))
	if err != nil {
		t.Fatalf("Init without config: %v", err)
	}
	defer rt.Close()
	srv := httptest.NewServer(middleware.Handler(&recorder{}, middleware.WithRuntime(rt)))
	defer srv.Close()
	other, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: []byte(secret)})
	tok, _ := other.Sign("r1", "", time.Now().Add(time.Hour))
	for _, lines := range [][]string{{"X-Shadowlane-Run: r1"}, {"X-Shadowlane-Token: " + tok}, {"X-Shadowlane-Run: r1", "X-Shadowlane-Token: " + tok}, {"Baggage: shadowlane.run=r1"}} {
		if code, body := rawGet(t, srv.URL, lines...); code != 403 || !strings.Contains(body, "no token keys") {
			t.Errorf("%v: %d %q", lines, code, body)
		}
	}
	if code, body := rawGet(t, srv.URL); code != 200 || body != "production" {
		t.Errorf("production: %d %q", code, body)
	}
	mu.Lock()
	n := strings.Count(logs.String(), "edge mode without token keys")
	mu.Unlock()
	if n != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", n, logs.String())
	}
	w := httptest.NewRecorder()
	rt.AdminHandler().ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/shadowlane/status", nil)) // the admin endpoint answers to IP/localhost Hosts
	var st shadowlane.Stats
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "without token keys") {
		t.Errorf("status: %v %s", err, w.Body.String())
	}
	// invalid (not absent) configuration still fails
	if _, err := shadowlane.Init(shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(), noEnv,
		shadowlane.WithConfig(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "short"}}}})); err == nil {
		t.Error("a short key was accepted")
	}
}

// Issue 16 item 6: trust.requireEnvBinding makes the token decide the env.
func TestRequireEnvBinding(t *testing.T) {
	for _, bind := range []bool{false, true} {
		rt := edgeRuntime(t, func(c *shadowlane.Config) { c.Trust.RequireEnvBinding = bind })
		rec := &recorder{}
		srv := httptest.NewServer(middleware.Handler(rec, middleware.WithRuntime(rt)))
		unbound, _ := rt.Keyring().Sign("r1", "", time.Now().Add(time.Hour))
		bound, _ := rt.Keyring().Sign("r1", "proj-a", time.Now().Add(time.Hour))
		for _, tc := range []struct {
			lines     []string
			code      int // without binding, with binding
			codeBound int
			want      propagation.Mark
		}{
			{[]string{"X-Shadowlane-Token: " + unbound, "X-Shadowlane-Env: proj-b"}, 200, 403, propagation.Mark{Run: "r1", Env: "proj-b"}},
			{[]string{"X-Shadowlane-Token: " + unbound}, 200, 200, propagation.Mark{Run: "r1"}},
			{[]string{"X-Shadowlane-Token: " + bound}, 200, 200, propagation.Mark{Run: "r1", Env: "proj-a"}},
			{[]string{"X-Shadowlane-Token: " + bound, "X-Shadowlane-Env: proj-a"}, 200, 200, propagation.Mark{Run: "r1", Env: "proj-a"}},
			{[]string{"X-Shadowlane-Token: " + bound, "X-Shadowlane-Env: proj-b"}, 403, 403, propagation.Mark{}},
			{[]string{"X-Shadowlane-Env: proj-b"}, 200, 200, propagation.Mark{Env: "proj-b"}}, // production env routing is untouched
		} {
			want := tc.code
			if bind {
				want = tc.codeBound
			}
			code, body := rawGet(t, srv.URL, tc.lines...)
			if code != want {
				t.Errorf("bind=%v %v: %d %q, want %d", bind, tc.lines, code, body, want)
				continue
			}
			if _, m, _ := rec.last(); code == 200 && m != tc.want {
				t.Errorf("bind=%v %v: mark %v, want %v", bind, tc.lines, m, tc.want)
			}
		}
		srv.Close()
	}
	_ = context.Background
}

// The unmarked entry stays allocation-free with realistic headers,
// application baggage included.
func TestEntryUnmarkedAllocs(t *testing.T) {
	rt := edgeRuntime(t, nil)
	h := middleware.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), middleware.WithRuntime(rt))
	req := httptest.NewRequest("GET", "/orders/1", nil)
	for k, v := range map[string]string{"Accept": "*/*", "User-Agent": "hey/0.0.1", "Baggage": "userId=alice,tenant=t1",
		"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "X-Request-Id": "abc", "Grpc-Accept-Encoding": "gzip"} {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Fatalf("unmarked entry allocates %v", n)
	}
	if len(req.Header) != 6 || req.Header.Get("Baggage") != "userId=alice,tenant=t1" {
		t.Fatalf("unmarked request's headers changed: %v", req.Header)
	}
}
