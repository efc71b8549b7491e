package shadowlane_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// The one init call: config from $SHADOWLANE_CONFIG and SHADOWLANE_* env
// vars (here given inline), validated, made the default runtime that every
// adapter uses.
func ExampleInit() {
	rt, err := shadowlane.Init(
		shadowlane.WithConfig(shadowlane.Config{
			Service: "orders",
			Trust:   shadowlane.TrustConfig{Mode: "internal"},
		}),
		shadowlane.WithoutConfigFile(),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()

	h := middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("handler sees:", propagation.FromContext(r.Context()))
	}))
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("X-Shadowlane-Run", "run-42")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output: handler sees: run=run-42
}

// A config with a bad field is refused with an error naming it.
func ExampleConfig_Validate() {
	c := shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "edge", OnUntrusted: "ignore",
		Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}}}
	fmt.Println(c.Validate())
	// Output: config trust.onUntrusted: "ignore": want strip or reject
}

// The kill switch refuses load-test traffic at every entry; production is
// untouched.
func ExampleRuntime_SetLoadTest() {
	rt, _ := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	defer rt.Close()
	h := middleware.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), middleware.WithRuntime(rt))
	rt.SetLoadTest(false, "incident 7")

	for _, run := range []string{"", "run-1"} {
		req := httptest.NewRequest("GET", "/", nil)
		if run != "" {
			req.Header.Set("X-Shadowlane-Run", run)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		fmt.Printf("run=%q -> %d %q\n", run, w.Code, strings.TrimSpace(w.Body.String()))
	}
	// Output:
	// run="" -> 200 ""
	// run="run-1" -> 503 "shadowlane: load-test traffic is switched off: incident 7 (load-test traffic is switched off)"
}
