package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Load-test calls to third parties are blocked (or mocked) by the client
// transport; production calls are untouched.
func ExampleTransport() {
	rt, _ := shadowlane.New(shadowlane.Config{
		Trust:    shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"*.svc.cluster.local"}},
	})
	defer rt.Close()
	client := middleware.Client(nil, middleware.WithRuntime(rt))

	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-1"})
	req, _ := http.NewRequestWithContext(ctx, "POST", "https://api.payments.example/v1/charge", nil)
	_, err := client.Do(req)
	fmt.Println(errors.Is(err, shadow.ErrBlocked))
	// Output: true
}

// The entry counts each marked request per run under the ServeMux pattern
// it matched, and a 5xx answer as an error of the run: what
// GET /shadowlane/status?run=R serves and `shadowlane run --services`
// reports.
func ExampleHandler_runEvidence() {
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	defer rt.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /pay/{id}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "payment provider down", http.StatusBadGateway)
	})
	h := middleware.Handler(mux, middleware.WithRuntime(rt))
	for range 2 {
		req := httptest.NewRequest("POST", "/pay/17", nil)
		req.Header.Set("X-Shadowlane-Run", "run-1")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	s := rt.RunStatus("run-1")
	fmt.Println(s.Entries[0].Entry, s.Entries[0].Route, s.Entries[0].Marked)
	fmt.Println(s.Errors[0].Reason, s.Errors[0].N)
	// Output:
	// http POST /pay/{id} 2
	// http 502 2
}
