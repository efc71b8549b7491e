package envtag_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// The selection rule on its own: a Pool of labelled instances.
func ExamplePool() {
	policy, _ := envtag.NewPolicy(envtag.Config{
		StrictServices: []string{"payments"},
	})
	members := []envtag.Member[string]{
		{Env: "", Item: "orders-trunk-1"},
		{Env: "proj-42", Item: "orders-proj-42-1"},
	}
	orders := envtag.NewPool("orders", policy, members)
	payments := envtag.NewPool("payments", policy, members)

	for _, tag := range []string{"", "proj-42", "proj-7"} {
		got, _ := orders.Pick(propagation.Mark{Env: tag})
		fmt.Printf("orders   %-8q -> %s\n", tag, got)
	}
	_, err := payments.Pick(propagation.Mark{Env: "proj-7"})
	fmt.Println("payments \"proj-7\"  ->", err)
	// Output:
	// orders   ""       -> orders-trunk-1
	// orders   "proj-42" -> orders-proj-42-1
	// orders   "proj-7" -> orders-trunk-1
	// payments "proj-7"  -> envtag: service "payments": strict: no ready instance in environment "proj-7"
}

// An HTTP client whose requests to http://orders/... go to the orders
// instance of the request's environment.
func ExampleTransport() {
	serve := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
	}
	trunk, proj := serve("trunk"), serve("proj-42")
	defer trunk.Close()
	defer proj.Close()

	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{
		"orders": {
			{Addr: strings.TrimPrefix(trunk.URL, "http://")},
			{Addr: strings.TrimPrefix(proj.URL, "http://"), Env: "proj-42"},
		},
	})
	tr := envtag.NewTransport(reg, envtag.WithServices("orders"))
	defer tr.Close()
	client := &http.Client{Transport: tr}

	for _, tag := range []string{"", "proj-42"} {
		ctx := propagation.With(context.Background(), propagation.Mark{Env: tag})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://orders/items", nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%q -> %s\n", tag, b)
	}
	// Output:
	// "" -> trunk
	// "proj-42" -> proj-42
}

// Reading the tag at the edge from a query parameter or a cookie.
func ExampleExtractor() {
	x, _ := envtag.NewExtractor(envtag.SourceConfig{Cookie: "shadowlane-env", Query: "env"})
	for _, target := range []string{"/shop?env=proj-42", "/shop", "/shop?env=no%20spaces"} {
		tag, found, err := x.Tag(httptest.NewRequest("GET", target, nil))
		fmt.Printf("%s: %q %v %v\n", target, tag, found, err != nil)
	}
	// Output:
	// /shop?env=proj-42: "proj-42" true false
	// /shop: "" false false
	// /shop?env=no%20spaces: "" true true
}

// A registry update that lists one address under two environments is
// refused, naming the address; the previous set stays in force.
func ExampleStaticRegistry_Set() {
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{
		"orders": {{Addr: "10.0.0.7:8080"}, {Addr: "10.0.3.9:8080", Env: "proj-42"}},
	})
	err := reg.Set("orders", []envtag.Endpoint{
		{Addr: "10.0.0.7:8080"}, {Addr: "10.0.3.9:8080", Env: "proj-42"},
		{Addr: "10.0.3.9:8080"}, // typo: the proj-42 instance under trunk too
	})
	fmt.Println(errors.Is(err, envtag.ErrConflict))
	fmt.Println(err)
	fmt.Println(reg.Endpoints("orders"))
	// Output:
	// true
	// envtag: registry: service "orders": envtag: address "10.0.3.9:8080" is listed under two environments ("proj-42" and "trunk") (update refused, the previous set stays in force)
	// [{10.0.0.7:8080  } {10.0.3.9:8080 proj-42 }]
}

// A transport whose dead instances are ejected after one connection
// failure and re-probed every 2 s at first (up to 30 s); a request that
// fails to connect is tried on up to 3 other instances of its lane.
func ExampleWithHealth() {
	reg, _ := envtag.NewStaticRegistry(nil)
	tr := envtag.NewTransport(reg, envtag.WithHealth(envtag.HealthConfig{
		Failures:    1,
		Ejection:    2 * time.Second,
		MaxEjection: 30 * time.Second,
		Retries:     3,
	}))
	defer tr.Close()
	h := envtag.Health("orders") // counters per service
	fmt.Println(h.Ejections, h.Retries)
	// Output: 0 0
}

// The single-room pressure test: load-test run "drill-7" is pinned to
// room-b. Production keeps same zone first (the caller is in room-a); the
// pinned run only ever reaches room-b, and is refused when room-b has no
// instance left in the lane.
func ExampleConfig_pin() {
	policy, _ := envtag.NewPolicy(envtag.Config{
		Zone: "room-a",
		Pin:  map[string]string{"drill-7": "room-b"},
	})
	both := envtag.NewPool("stock", policy, []envtag.Member[string]{
		{Zone: "room-a", Item: "stock-a1"},
		{Zone: "room-b", Item: "stock-b1"},
	}, envtag.PoolStats(envtag.NewStats()))
	prod, _ := both.Pick(propagation.Mark{})
	pinned, _ := both.Pick(propagation.Mark{Run: "drill-7"})
	other, _ := both.Pick(propagation.Mark{Run: "drill-8"})
	fmt.Println("production ->", prod)
	fmt.Println("drill-7    ->", pinned)
	fmt.Println("drill-8    ->", other)

	roomBDown := envtag.NewPool("stock", policy, []envtag.Member[string]{{Zone: "room-a", Item: "stock-a1"}},
		envtag.PoolStats(envtag.NewStats()))
	_, err := roomBDown.Pick(propagation.Mark{Run: "drill-7"})
	fmt.Println(errors.Is(err, envtag.ErrZonePinned), err)
	// Output:
	// production -> stock-a1
	// drill-7    -> stock-b1
	// drill-8    -> stock-a1
	// true envtag: service "stock": load-test run "drill-7" is pinned to zone "room-b", which has no ready instance in environment "trunk" (refused, never spilled to another zone)
}
