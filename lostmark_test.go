package shadowlane_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

func testDataRuntime(t testing.TB, action string) *shadowlane.Runtime {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{Service: "svc", TestData: shadowlane.TestDataConfig{
		Action:       action,
		Prefixes:     []string{"lt-"},
		EmailDomains: []string{"loadtest.example"},
		IDRanges:     []shadowlane.IDRange{{Min: 9_000_000_000, Max: 9_099_999_999}},
		Headers:      []shadowlane.TestDataHeader{{Name: "X-Test-User", Value: "yes"}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestTestDataMatch(t *testing.T) {
	td := testDataRuntime(t, "").TestData()
	for _, s := range []string{"lt-42", "cart:lt-42", "/users/LT-42", "lt-7@shop.example", "a@loadtest.example", "a@eu.loadtest.example",
		"user:9000000001", "9000000001", "order-9000000001", "x lt-1", "{\"email\":\"b@LoadTest.Example\"}"} {
		if _, ok := td.Match(s); !ok {
			t.Errorf("Match(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "alt-42", "x-lt-42", "a@loadtest.example.com", "a@notloadtest.example", "user_9000000001", "90000000010",
		"8999999999", "9100000000", "id9000000001", "loadtest.example", "plain"} {
		if r, ok := td.Match(s); ok {
			t.Errorf("Match(%q) = true (%s), want false", s, r)
		}
	}
	for _, v := range []any{int64(9_000_000_005), 9_000_000_005, uint64(9_000_000_005), float64(9_000_000_005), []byte("lt-x")} {
		if _, ok := td.MatchValue(v); !ok {
			t.Errorf("MatchValue(%T %v) = false", v, v)
		}
	}
	for _, v := range []any{int64(5), 1.5, true, nil, uint64(1 << 63)} {
		if _, ok := td.MatchValue(v); ok {
			t.Errorf("MatchValue(%T %v) = true", v, v)
		}
	}
}

func TestTestDataMatchSQL(t *testing.T) {
	td := testDataRuntime(t, "").TestData()
	for _, q := range []string{
		"INSERT INTO orders (id, email) VALUES (9000000001, 'x@example.com')",
		"INSERT INTO orders (sku) VALUES ('lt-1')",
		"UPDATE users SET email = 'it''s@loadtest.example' WHERE id = 3",
		"SELECT * FROM t WHERE a = $x$lt-9$x$",
	} {
		if _, ok := td.MatchSQL(q); !ok {
			t.Errorf("MatchSQL(%q) = false", q)
		}
	}
	for _, q := range []string{
		`SELECT "lt-col", lt_x FROM lt_orders WHERE id = $1 -- 'lt-comment'`,
		"SELECT 1 /* 9000000001 */ FROM t WHERE x = 'prod'",
		"SELECT t9000000001 FROM x WHERE y = 1.9000000001",
		"INSERT INTO orders (id) VALUES (?)",
	} {
		if r, ok := td.MatchSQL(q); ok {
			t.Errorf("MatchSQL(%q) = true (%s)", q, r)
		}
	}
}

func TestTestDataConfigErrors(t *testing.T) {
	for _, c := range []shadowlane.TestDataConfig{
		{Action: "block", Prefixes: []string{"lt-"}},
		{Prefixes: []string{"l"}},
		{Prefixes: []string{"::"}},
		{EmailDomains: []string{"localhost"}},
		{IDRanges: []shadowlane.IDRange{{Min: 5, Max: 1}}},
		{Headers: []shadowlane.TestDataHeader{{Name: "X Bad", Value: "1"}}},
		{Headers: []shadowlane.TestDataHeader{{Name: "X-Ok"}}},
	} {
		_, err := shadowlane.New(shadowlane.Config{TestData: c}, shadowlane.WithoutConfigFile())
		var fe *shadowlane.FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "testData") {
			t.Errorf("%+v: err = %v, want a testData field error", c, err)
		}
	}
	rt, err := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rt.TestData() != nil {
		t.Fatal("TestData() without testData rules is not nil")
	}
	if err := rt.CheckUnmarked(context.Background(), "redis", "set", "lt-1"); err != nil {
		t.Fatalf("no testData: %v", err)
	}
}

func TestTestDataYAML(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("testData:\n  action: alert\n  prefixes: [lt-]\n  emailDomains: [loadtest.example]\n  idRanges: [{min: 10, max: 20}]\n  headers: [{name: X-Test-User, value: \"*\"}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := shadowlane.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.TestData.Action != "alert" || len(c.TestData.IDRanges) != 1 || c.TestData.IDRanges[0].Max != 20 || c.TestData.Headers[0].Value != "*" {
		t.Fatalf("decoded %+v", c.TestData)
	}
}

func TestCheckUnmarked(t *testing.T) {
	rt := testDataRuntime(t, "")
	ctx := context.Background()
	err := rt.CheckUnmarked(ctx, "redis", "set", "cart:lt-1", "v")
	if !errors.Is(err, shadow.ErrLostMark) {
		t.Fatalf("unmarked lt- key: %v, want ErrLostMark", err)
	}
	var se *shadow.Error
	if !errors.As(err, &se) || se.Store != "redis" || !strings.Contains(se.Error(), "svc/redis") {
		t.Fatalf("error %v does not name the exit", err)
	}
	if err := rt.CheckUnmarked(ctx, "redis", "set", "cart:1", "v"); err != nil {
		t.Fatalf("production datum: %v", err)
	}
	marked := propagation.With(ctx, propagation.Mark{Run: "r1"})
	if err := rt.CheckUnmarked(marked, "redis", "set", "cart:lt-1"); err != nil {
		t.Fatalf("marked: %v", err)
	}
	envOnly := propagation.With(ctx, propagation.Mark{Env: "proj-a"})
	if err := rt.CheckUnmarked(envOnly, "redis", "set", "cart:lt-1"); !errors.Is(err, shadow.ErrLostMark) {
		t.Fatalf("env-only mark is production: %v", err)
	}
	if got := rt.Stats().LostMarks["redis"]; got != 2 {
		t.Fatalf("LostMarks[redis] = %d, want 2", got)
	}
	alert := testDataRuntime(t, "alert")
	if err := alert.CheckUnmarked(ctx, "kafka", "t", "lt-1"); err != nil {
		t.Fatalf("alert: %v", err)
	}
	if got := alert.Stats().LostMarks["kafka"]; got != 1 {
		t.Fatalf("alert LostMarks[kafka] = %d, want 1", got)
	}
}

func TestTransportLostMark(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	rt := testDataRuntime(t, "")
	c := middleware.Client(nil, middleware.WithRuntime(rt))
	get := func(ctx context.Context, u string, h http.Header) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	ctx := context.Background()
	for _, tc := range []struct {
		u string
		h http.Header
	}{
		{srv.URL + "/users/lt-5", nil},
		{srv.URL + "/users?email=" + url.QueryEscape("a@loadtest.example"), nil},
		{srv.URL + "/users/9000000003", nil},
		{srv.URL + "/users", http.Header{"X-Test-User": {"yes"}}},
	} {
		if err := get(ctx, tc.u, tc.h); !errors.Is(err, shadow.ErrLostMark) {
			t.Errorf("%s %v: err = %v, want ErrLostMark", tc.u, tc.h, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d refused requests reached the server", hits.Load())
	}
	if err := get(ctx, srv.URL+"/users/5", http.Header{"X-Test-User": {"no"}}); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("production request: %d hits", hits.Load())
	}
	if got := rt.Stats().LostMarks["http"]; got != 4 {
		t.Fatalf("LostMarks[http] = %d, want 4", got)
	}
}

func FuzzTestDataMatch(f *testing.F) {
	td := testDataRuntime(f, "").TestData()
	f.Add("INSERT INTO t VALUES ('lt-1', 9000000001, $a$x$a$) -- c")
	f.Add("a@loadtest.example.")
	f.Fuzz(func(t *testing.T, s string) {
		td.Match(s)
		td.MatchSQL(s)
		td.MatchHeader("X-Test-User", s)
		if u, err := url.Parse(s); err == nil {
			td.MatchURL(u)
		}
	})
}

func BenchmarkLostMarkGuard(b *testing.B) {
	ctx := context.Background()
	off, _ := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	defer off.Close()
	on := testDataRuntime(b, "")
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = off.CheckUnmarked(ctx, "redis", "set", "cart:12345", "{\"sku\":\"sku-1\",\"qty\":2}")
		}
	})
	b.Run("on/key+value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = on.CheckUnmarked(ctx, "redis", "set", "cart:12345", "{\"sku\":\"sku-1\",\"qty\":2}")
		}
	})
	b.Run("on/sql", func(b *testing.B) {
		td := on.TestData()
		q := "INSERT INTO orders (id, sku, email, qty) VALUES ($1, 'sku-1', 'a@shop.example', 2)"
		b.ReportAllocs()
		for b.Loop() {
			td.MatchSQL(q)
		}
	})
}

// TestMatchHeaderBytes: the byte form of MatchHeader gives the same
// answers and allocates nothing.
func TestMatchHeaderBytes(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{TestData: shadowlane.TestDataConfig{
		Prefixes: []string{"lt-"},
		Headers:  []shadowlane.TestDataHeader{{Name: "X-Test-User", Value: "yes"}, {Name: "X-Load", Value: "ptest*"}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	td := rt.TestData()
	for _, c := range [][2]string{
		{"x-test-user", "yes"}, {"X-TEST-USER", "yes"}, {"x-test-user", "yes!"}, {"x-test-user", "Yes"},
		{"x-load", "ptest-7"}, {"x-load", "ptes"}, {"x-other", "yes"}, {"trace", "user lt-9"}, {"x-test-use", "yes"},
	} {
		r1, ok1 := td.MatchHeader(c[0], c[1])
		r2, ok2 := td.MatchHeaderBytes(c[0], []byte(c[1]))
		if r1 != r2 || ok1 != ok2 {
			t.Errorf("%q: MatchHeader = %q %v, MatchHeaderBytes = %q %v", c, r1, ok1, r2, ok2)
		}
	}
	if _, ok := td.MatchHeader("X-Load", "ptest"); !ok {
		t.Error("a prefix rule must match its prefix alone")
	}
	if _, ok := td.MatchHeader("x-test-user", "yes!"); ok {
		t.Error("an exact rule matched a longer value")
	}
	v := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if n := testing.AllocsPerRun(100, func() { td.MatchHeaderBytes("traceparent", v) }); n != 0 {
		t.Fatalf("MatchHeaderBytes allocates %v", n)
	}
}
