package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/httplimit"
)

func ExampleMiddleware() {
	l := limiter.New()
	_ = l.SetRules([]limiter.Rule{{Name: "hello", Resource: "GET /hello", QPS: 1, Burst: 1}})
	h := httplimit.Middleware(l)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/hello", nil))
		if rec.Code == http.StatusOK {
			fmt.Print(rec.Body.String())
		} else {
			fmt.Println(rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("RateLimit-Policy"))
		}
	}
	// Output:
	// hello
	// 429 1 "hello";q=1;w=1
}
