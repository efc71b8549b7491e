package envtag_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// named starts a real HTTP server on loopback that answers with its name
// and the Host header it saw.
func named(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+" "+r.Host)
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func get(t *testing.T, c *http.Client, url string, m propagation.Mark) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(propagation.With(ctx, m), "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTransportRouting(t *testing.T) {
	trunk, a, b := named(t, "trunk"), named(t, "proj-a"), named(t, "proj-b")
	other := named(t, "other")
	svc := uniq("orders")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{
		svc: {{Addr: addr(trunk)}, {Addr: addr(a), Env: "proj-a"}},
	})
	tr := envtag.NewTransport(reg, envtag.WithServices(svc))
	defer tr.Close()
	c := &http.Client{Transport: tr}

	for _, tc := range []struct {
		m    propagation.Mark
		want string
	}{
		{propagation.Mark{}, "trunk"},
		{propagation.Mark{Env: "proj-a"}, "proj-a"},
		{propagation.Mark{Run: "r1", Env: "proj-a"}, "proj-a"},
		{propagation.Mark{Env: "proj-b"}, "trunk"},
	} {
		for i := 0; i < 5; i++ {
			got, err := get(t, c, "http://"+svc+"/x", tc.m)
			if err != nil || got != tc.want+" "+svc {
				t.Fatalf("%v: %q, %v; want %q (Host header = service name)", tc.m, got, err, tc.want)
			}
		}
	}
	// Hosts outside WithServices pass through unchanged.
	if got, err := get(t, c, other.URL, propagation.Mark{Env: "proj-a"}); err != nil || !strings.HasPrefix(got, "other ") {
		t.Fatalf("pass-through: %q %v", got, err)
	}
	// Instances coming and going reroute without a restart.
	reg.Set(svc, []envtag.Endpoint{{Addr: addr(trunk)}, {Addr: addr(b), Env: "proj-b"}})
	waitFor(t, func() bool {
		got, _ := get(t, c, "http://"+svc+"/", propagation.Mark{Env: "proj-b"})
		return strings.HasPrefix(got, "proj-b ")
	})
	if got, _ := get(t, c, "http://"+svc+"/", propagation.Mark{Env: "proj-a"}); !strings.HasPrefix(got, "trunk ") {
		t.Fatalf("proj-a after it left: %q", got)
	}
	// No trunk instance: untagged fails before anything is sent, and never
	// reaches a project instance.
	reg.Set(svc, []envtag.Endpoint{{Addr: addr(a), Env: "proj-a"}, {Addr: addr(b), Env: "proj-b"}})
	waitFor(t, func() bool { _, err := get(t, c, "http://"+svc+"/", propagation.Mark{}); return err != nil })
	for i := 0; i < 10; i++ {
		got, err := get(t, c, "http://"+svc+"/", propagation.Mark{})
		if !errors.Is(err, envtag.ErrNoLane) {
			t.Fatalf("untagged without trunk: %q, %v; want ErrNoLane", got, err)
		}
	}
}

func TestTransportStrictAndUnknown(t *testing.T) {
	trunk := named(t, "trunk")
	svc := uniq("orders")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {{Addr: addr(trunk)}}})
	p, _ := envtag.NewPolicy(envtag.Config{StrictServices: []string{svc}})
	tr := envtag.NewTransport(reg, envtag.WithPolicy(p))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	body := &closeSpy{Reader: strings.NewReader("x")}
	req, _ := http.NewRequestWithContext(propagation.With(context.Background(), propagation.Mark{Env: "proj-a"}), "POST", "http://"+svc+"/", body)
	if _, err := c.Do(req); !errors.Is(err, envtag.ErrNoLane) {
		t.Fatalf("strict miss: %v", err)
	}
	if !body.closed {
		t.Error("request body not closed on a routing error")
	}
	// Without WithServices an unknown host is an empty service: fail closed.
	if _, err := get(t, c, "http://"+uniq("nowhere")+"/", propagation.Mark{}); !errors.Is(err, envtag.ErrNoLane) {
		t.Fatalf("unknown service: %v", err)
	}
}

type closeSpy struct {
	io.Reader
	closed bool
}

func (c *closeSpy) Close() error { c.closed = true; return nil }

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}
