package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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
