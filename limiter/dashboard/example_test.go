package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/dashboard"
)

func Example() {
	l := limiter.New()
	_ = l.SetRules([]limiter.Rule{{Name: "orders", Resource: "GET /orders/:id", QPS: 100}})
	tok, _ := l.Resource("GET /orders/:id").Entry(context.Background())
	tok.Exit()

	mux := http.NewServeMux()
	mux.Handle("/debug/limits/", http.StripPrefix("/debug/limits", dashboard.Handler(l)))

	v := dashboard.Snapshot(l)
	fmt.Println(v.Rules[0].Name, v.Totals[0].Resource, v.Totals[0].Pass)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/debug/limits/", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output:
	// orders GET /orders/:id 1
	// 200 text/html; charset=utf-8
}
