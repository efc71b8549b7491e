package slgin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/propagation"
)

// Items 1, 2 and 4 through gin on a real loopback server: a token alone
// carries its mark, unverifiable indicators are refused with 403, and the
// handler never sees a mark carrier (every line, every case, baggage
// members), only the decided mark in the context.
func TestGinTrust(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var mark propagation.Mark
	var hdr http.Header
	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt)))
	r.GET("/x", func(c *gin.Context) {
		mark, hdr = propagation.FromContext(c.Request.Context()), c.Request.Header.Clone()
		c.String(200, "ok")
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	tok, _ := rt.Keyring().Sign("r1", "proj-a", time.Now().Add(time.Hour))
	do := func(h http.Header) int {
		req, _ := http.NewRequest("GET", srv.URL+"/x", nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	leftovers := func() []string {
		var out []string
		for k, v := range hdr {
			if strings.Contains(strings.ToLower(k), "shadowlane") || (k == "Baggage" && strings.Contains(strings.Join(v, ","), "shadowlane.")) {
				out = append(out, k)
			}
		}
		return out
	}
	if code := do(http.Header{"X-Shadowlane-Token": {tok}, "Baggage": {"a=1", "shadowlane.token=" + tok}}); code != 200 || mark != (propagation.Mark{Run: "r1", Env: "proj-a"}) || len(leftovers()) > 0 || hdr.Get("Baggage") != "a=1" {
		t.Fatalf("token only: %d %v %v %q", code, mark, leftovers(), hdr.Values("Baggage"))
	}
	for _, h := range []http.Header{
		{"X-Shadowlane-Run": {"r1"}},
		{"X-Shadowlane-Token": {tok}, "X-Shadowlane-Run": {"r2"}},
		{"Baggage": {"a=1", "shadowlane.run=r1"}},
		{"X-Shadowlane-Token": {tok}, "Grpc-Metadata-X-Shadowlane-Run": {"evil"}},
	} {
		mark = propagation.Mark{Run: "untouched"}
		if code := do(h); code != 403 || mark.Run != "untouched" {
			t.Errorf("%v: %d, handler saw %v", h, code, mark)
		}
	}
	if code := do(http.Header{"X-Shadowlane-Env": {"proj-b"}, "Baggage": {"userId=alice"}}); code != 200 || mark != (propagation.Mark{Env: "proj-b"}) || len(leftovers()) > 0 || hdr.Get("Baggage") != "userId=alice" {
		t.Fatalf("env only: %d %v %v", code, mark, leftovers())
	}
}
