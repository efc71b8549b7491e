package slgin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
)

// A real gin server on loopback: marked requests are counted per run under
// the route template (c.FullPath(), never the raw path; the method when no
// route matched), their 5xx answers and panics (recovered by gin.Recovery
// outside shadowlane) as errors of the run; production requests leave
// nothing, and the unmarked path stays allocation-free.
func TestRunEvidenceGin(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "gateway", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	r := gin.New()
	r.Use(gin.CustomRecovery(func(c *gin.Context, _ any) { c.AbortWithStatus(500) }))
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	r.GET("/orders/:id", func(c *gin.Context) { c.String(200, "ok") })
	r.POST("/pay", func(c *gin.Context) { c.String(503, "payment down") })
	r.POST("/bad", func(c *gin.Context) { c.String(400, "bad input") })
	r.POST("/panic", func(c *gin.Context) { panic("handler bug") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	do := func(method, path string, marked bool) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if marked {
			req.Header.Set("X-Shadowlane-Run", "gin-r1")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, c := range []struct {
		method, path string
		marked       bool
		want         int
	}{
		{"GET", "/orders/1", true, 200}, {"GET", "/orders/2", true, 200}, {"GET", "/orders/3", true, 200},
		{"POST", "/pay", true, 503}, {"POST", "/pay", true, 503},
		{"POST", "/bad", true, 400},
		{"POST", "/panic", true, 500},
		{"DELETE", "/nowhere/9", true, 404},
		{"POST", "/pay", false, 503}, {"POST", "/panic", false, 500},
	} {
		if got := do(c.method, c.path, c.marked); got != c.want {
			t.Fatalf("%d %s %s: %d, want %d", i, c.method, c.path, got, c.want)
		}
	}
	ev := rt.RunStatus("gin-r1")
	wantEntries := []shadowlane.RunEntry{
		{Entry: "gin", Route: "/bad", Marked: 1},
		{Entry: "gin", Route: "/orders/:id", Marked: 3},
		{Entry: "gin", Route: "/panic", Marked: 1},
		{Entry: "gin", Route: "/pay", Marked: 2},
		{Entry: "gin", Route: "DELETE", Marked: 1},
	}
	if !slices.Equal(ev.Entries, wantEntries) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "gin 503", N: 2}, {Reason: "gin panic", N: 1}}; !slices.Equal(ev.Errors, want) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}

	if raceEnabled {
		return // gin's context pool makes allocation counts inexact under -race
	}
	plain := gin.New()
	plain.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	plain.GET("/orders/:id", func(c *gin.Context) { c.Status(200) })
	req := httptest.NewRequest("GET", "/orders/1", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(200, func() { plain.ServeHTTP(w, req) }); n != 0 {
		t.Fatalf("unmarked gin entry allocates %v", n)
	}
}
