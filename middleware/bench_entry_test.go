package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
)

// BenchmarkEntryUnmarked is the unmarked edge entry with the headers a
// typical browser or load balancer sends (no mark carriers): the number the
// trust work must not move.
func BenchmarkEntryUnmarked(b *testing.B) {
	for _, mode := range []string{"edge", "internal"} {
		b.Run(mode, func(b *testing.B) {
			cfg := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: mode}}
			if mode == "edge" {
				cfg.Trust.Keys = []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}
			}
			rt, err := shadowlane.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := middleware.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), middleware.WithRuntime(rt))
			req := httptest.NewRequest("GET", "/orders/1", nil)
			for k, v := range map[string]string{
				"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "hey/0.0.1",
				"Content-Type": "application/json", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"Baggage": "userId=alice,tenant=t1", "X-Request-Id": "abc", "Authorization": "Bearer x",
			} {
				req.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
