package shadowlane_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// Environment routing from the config: the registry file lists a trunk and
// a proj-a instance of "ledger"; the routing section makes it strict. A
// client bound to the runtime sends each request to the instance of its
// environment tag.
func ExampleRuntime_Registry() {
	var servers []*httptest.Server
	serve := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		servers = append(servers, s)
		return strings.TrimPrefix(s.URL, "http://")
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	reg := filepath.Join(dir, "instances.json")
	os.WriteFile(reg, []byte(`{"services": {"ledger": [{"addr": "`+serve("ledger@trunk")+`"}, {"addr": "`+serve("ledger@proj-a")+`", "env": "proj-a"}]}}`), 0o600)
	cfg := filepath.Join(dir, "shadowlane.yaml")
	os.WriteFile(cfg, []byte(`service: inventory
trust: {mode: internal}
routing:
  strictServices: [ledger]
  registry: {file: "`+reg+`"}
`), 0o600)

	rt, err := shadowlane.Init(shadowlane.WithConfigFile(cfg), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()
	tr := envtag.NewTransport(rt.Registry(), envtag.WithServices("ledger"), envtag.WithPolicyFunc(rt.RoutingPolicy))
	defer tr.Close()
	client := &http.Client{Transport: tr}

	for _, tag := range []string{"", "proj-a", "proj-z"} {
		ctx := propagation.With(context.Background(), propagation.Mark{Env: tag})
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://ledger/v1/entries", nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Printf("%-8q -> %v\n", tag, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%-8q -> %s\n", tag, b)
	}
	// Output:
	// ""       -> ledger@trunk
	// "proj-a" -> ledger@proj-a
	// "proj-z" -> Post "http://ledger/v1/entries": envtag: service "ledger": strict: no ready instance in environment "proj-z"
}
