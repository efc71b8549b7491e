package foundation

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/middleware"
)

// BenchmarkHTTPEntry measures the net/http middleware's unmarked entry,
// one request per measure.Op: "bare" serves the request with the handler
// alone; "few-headers" carries two ordinary headers (as the gin rows);
// "browser-headers" the eight a browser or load balancer typically sends
// (no mark carriers), as middleware's own BenchmarkEntryUnmarked.
func BenchmarkHTTPEntry(b *testing.B) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	few := req(nil)
	browser := req(map[string]string{
		"Accept": "application/json", "Accept-Encoding": "gzip", "User-Agent": "hey/0.0.1",
		"Content-Type": "application/json", "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Baggage": "userId=alice,tenant=t1", "X-Request-Id": "abc", "Authorization": "Bearer x",
	})
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{{"few-headers", few}, {"browser-headers", browser}} {
		b.Run(tc.name+"/bare", func(b *testing.B) { serveHTTP(b, h, tc.r) })
		for _, mode := range []string{"internal", "edge"} {
			b.Run(tc.name+"/shadowlane-"+mode+"/unmarked", func(b *testing.B) {
				serveHTTP(b, middleware.Handler(h, middleware.WithRuntime(runtimeFor(b, mode))), tc.r)
			})
		}
	}
}

func serveHTTP(b *testing.B, h http.Handler, r *http.Request) {
	w := httptest.NewRecorder()
	b.ReportAllocs()
	measure.GrowStack(8)
	for b.Loop() {
		measure.Op(func() { h.ServeHTTP(w, r) })
	}
}
