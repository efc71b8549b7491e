package slgin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/propagation"
)

func init() { gin.SetMode(gin.ReleaseMode) }

func newRouter(t *testing.T, rt *shadowlane.Runtime, got *propagation.Mark) *httptest.Server {
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()))
	r.GET("/orders/:id", func(c *gin.Context) {
		*got = propagation.FromContext(c.Request.Context())
		c.String(200, "ok")
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func TestGinMiddleware(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var got propagation.Mark
	srv := newRouter(t, rt, &got)
	tok, _ := rt.Keyring().Sign("r1", "proj-a", time.Now().Add(time.Hour))
	do := func(h map[string]string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/orders/1", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	got = propagation.Mark{Run: "x"}
	if code, _ := do(nil); code != 200 || !got.IsZero() {
		t.Fatalf("production: %d %v", code, got)
	}
	if code, _ := do(map[string]string{"X-Shadowlane-Run": "r1", "X-Shadowlane-Env": "proj-a", "X-Shadowlane-Token": tok}); code != 200 || got != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
		t.Fatalf("signed: %d %v", code, got)
	}
	if code, _ := do(map[string]string{"X-Shadowlane-Run": "r1", "X-Shadowlane-Env": "proj-b", "X-Shadowlane-Token": tok}); code != 403 {
		t.Fatalf("env not covered by the token must be refused: %d %v", code, got)
	}
	rt.SetLoadTest(false, "maintenance")
	got = propagation.Mark{Run: "untouched"}
	code, body := do(map[string]string{"X-Shadowlane-Run": "r1", "X-Shadowlane-Env": "proj-a", "X-Shadowlane-Token": tok})
	if code != 503 || body != "shadowlane: load-test traffic is switched off: maintenance (load-test traffic is switched off)\n" || got.Run != "untouched" {
		t.Fatalf("kill switch: %d %q handler saw %v", code, body, got)
	}
}

func BenchmarkGinUnmarked(b *testing.B) {
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	r.GET("/orders/:id", func(c *gin.Context) { c.Status(200) })
	req := httptest.NewRequest("GET", "/orders/1", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r.ServeHTTP(w, req)
	}
}
