package envtag_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// One address listed under two environments (an operator's typo) is
// refused by every registry, with an error naming the address, and the
// previous set stays in force: untagged requests never reach the project
// instance through the HTTP transport.
func TestConflictingAddressRefused(t *testing.T) {
	trunk, a := named(t, "trunk"), named(t, "proj-a")
	svc := uniq("orders")
	good := []envtag.Endpoint{{Addr: addr(trunk)}, {Addr: addr(a), Env: "proj-a"}}
	reg, err := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: good})
	if err != nil {
		t.Fatal(err)
	}
	tr := envtag.NewTransport(reg, envtag.WithServices(svc))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	check := func(when string) {
		t.Helper()
		for i := 0; i < 20; i++ {
			if got, err := get(t, c, "http://"+svc+"/", propagation.Mark{}); err != nil || !strings.HasPrefix(got, "trunk ") {
				t.Fatalf("%s: untagged request: %q, %v; want trunk only", when, got, err)
			}
			if got, err := get(t, c, "http://"+svc+"/", propagation.Mark{Env: "proj-a"}); err != nil || !strings.HasPrefix(got, "proj-a ") {
				t.Fatalf("%s: proj-a request: %q, %v", when, got, err)
			}
		}
	}
	check("before")

	// The proj-a instance also listed as trunk, written another way.
	host, port, _ := strings.Cut(addr(a), ":")
	typo := append(append([]envtag.Endpoint(nil), good...), envtag.Endpoint{Addr: "[::ffff:" + host + "]:" + port})
	for name, set := range map[string]func() error{
		"Set":     func() error { return reg.Set(svc, typo) },
		"Replace": func() error { return reg.Replace(map[string][]envtag.Endpoint{svc: typo}) },
		"New": func() error {
			_, err := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {{Addr: "h:1", Env: "proj-a"}, {Addr: "H:1", Env: "proj-b"}}})
			return err
		},
	} {
		err := set()
		var ce *envtag.ConflictError
		if !errors.Is(err, envtag.ErrConflict) || !errors.As(err, &ce) {
			t.Fatalf("%s with a conflicting address: %v, want ErrConflict", name, err)
		}
		if !strings.Contains(err.Error(), ce.Addr) || !strings.Contains(err.Error(), svc) && name != "New" {
			t.Errorf("%s: error does not name the address and service: %v", name, err)
		}
	}
	if got := reg.Endpoints(svc); len(got) != 2 {
		t.Fatalf("previous set not kept: %v", got)
	}
	check("after refused updates")

	// The same address twice under the same label is no conflict.
	if err := reg.Set(svc, append(good, good[0])); err != nil {
		t.Fatalf("duplicate with the same label: %v", err)
	}
	check("duplicate")
}

func TestFileRegistryRefusesConflict(t *testing.T) {
	trunk, a := named(t, "trunk"), named(t, "proj-a")
	svc := uniq("orders")
	path := filepath.Join(t.TempDir(), "reg.json")
	writeFile(t, path, `{"services":{"`+svc+`":[{"addr":"`+addr(trunk)+`"},{"addr":"`+addr(a)+`","env":"proj-a"}]}}`)
	reg, err := envtag.NewFileRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := envtag.NewTransport(reg, envtag.WithServices(svc))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	// The typo: the proj-a instance listed under trunk as well.
	writeFile(t, path, `{"services":{"`+svc+`":[{"addr":"`+addr(trunk)+`"},{"addr":"`+addr(a)+`","env":"proj-a"},{"addr":"`+addr(a)+`"}]}}`)
	changed, err := reg.Reload()
	if changed || !errors.Is(err, envtag.ErrConflict) || !errors.Is(err, envtag.ErrBadFile) || !strings.Contains(err.Error(), addr(a)) {
		t.Fatalf("conflicting file: changed %v, %v; want ErrConflict naming %s", changed, err, addr(a))
	}
	for i := 0; i < 20; i++ {
		if got, err := get(t, c, "http://"+svc+"/", propagation.Mark{}); err != nil || !strings.HasPrefix(got, "trunk ") {
			t.Fatalf("untagged after a refused reload: %q, %v", got, err)
		}
	}
	if _, err := envtag.NewFileRegistry(path); !errors.Is(err, envtag.ErrConflict) {
		t.Fatalf("new registry from a conflicting file: %v", err)
	}
}

func TestCheckConflicts(t *testing.T) {
	for _, tc := range []struct {
		eps  []envtag.Endpoint
		addr string
	}{
		{[]envtag.Endpoint{{Addr: "a:1"}, {Addr: "a:1", Env: "p"}}, "a:1"},
		{[]envtag.Endpoint{{Addr: "A:1", Env: "p"}, {Addr: "b:1"}, {Addr: "a:1", Env: "q"}}, "A:1"},
		{[]envtag.Endpoint{{Addr: "[::1]:80", Env: "p"}, {Addr: "[0:0::1]:80"}}, "[::1]:80"},
		{[]envtag.Endpoint{{Addr: "10.0.0.1:80", Env: "p"}, {Addr: "[::ffff:10.0.0.1]:80"}}, "10.0.0.1:80"},
		{[]envtag.Endpoint{{Addr: "a:1"}, {Addr: "a:1"}, {Addr: "a:2", Env: "p"}}, ""},
		{nil, ""},
	} {
		err := envtag.CheckConflicts(tc.eps)
		var ce *envtag.ConflictError
		if tc.addr == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.eps, err)
			}
			continue
		}
		if !errors.As(err, &ce) || ce.Addr != tc.addr {
			t.Errorf("%v: %v, want a conflict on %s", tc.eps, err, tc.addr)
		}
	}
}
