package slgin_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane"
	slgin "github.com/shadowlane/shadowlane/adapters/slgin"
	"github.com/shadowlane/shadowlane/propagation"
)

// A gateway facing the internet: load-test marks need a signed token.
func ExampleMiddleware() {
	// A real service keeps the key in an environment variable
	// (trust.keys[].secretEnv).
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{
		Service: "gateway",
		Trust:   shadowlane.TrustConfig{Mode: "edge", Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "example-secret-example-secret-32b"}}},
	}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()

	r := gin.New()
	r.Use(slgin.Middleware(slgin.WithRuntime(rt), slgin.Edge()))
	r.GET("/orders/:id", func(c *gin.Context) {
		c.String(200, "%s", propagation.FromContext(c.Request.Context()))
	})

	req := httptest.NewRequest("GET", "/orders/1", nil)
	req.Header.Set("X-Shadowlane-Run", "run-1") // no token: refused at the edge
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	fmt.Print(w.Code, " ", w.Body.String())

	req = httptest.NewRequest("GET", "/orders/1", nil) // no mark at all: production
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 403 shadowlane: untrusted load-test mark: shadowlane: load-test token missing
	// 200 production
}
