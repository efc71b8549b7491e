package envtag_test

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// A transport bound to a policy function follows it at every request
// (a runtime's routing config reloads), and ignores the process-wide
// default policy.
func TestTransportPolicyFunc(t *testing.T) {
	trunk, a := named(t, "trunk"), named(t, "proj-a")
	svc := uniq("ledger")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{
		svc: {{Addr: addr(trunk)}, {Addr: addr(a), Env: "proj-a"}},
	})
	strict, err := envtag.NewPolicy(envtag.Config{StrictServices: []string{svc}})
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[envtag.Policy]
	tr := envtag.NewTransport(reg, envtag.WithPolicyFunc(cur.Load))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	url := "http://" + svc + "/"

	envtag.SetDefaultPolicy(strict) // not the bound one: must not apply
	defer envtag.SetDefaultPolicy(nil)
	if got, err := get(t, c, url, propagation.Mark{Env: "proj-z"}); err != nil || got != "trunk "+svc {
		t.Fatalf("default rule: %q %v", got, err)
	}
	cur.Store(strict)
	if _, err := get(t, c, url, propagation.Mark{Env: "proj-z"}); !errors.Is(err, envtag.ErrNoLane) {
		t.Fatalf("strict via the bound policy: %v", err)
	}
	if got, err := get(t, c, url, propagation.Mark{Env: "proj-a"}); err != nil || got != "proj-a "+svc {
		t.Fatalf("strict lane: %q %v", got, err)
	}
	if got, err := get(t, c, url, propagation.Mark{}); err != nil || got != "trunk "+svc {
		t.Fatalf("untagged: %q %v", got, err)
	}
	cur.Store(nil)
	if got, err := get(t, c, url, propagation.Mark{Env: "proj-z"}); err != nil || got != "trunk "+svc {
		t.Fatalf("back to the default rule: %q %v", got, err)
	}
}

func TestTagFrom(t *testing.T) {
	x, err := envtag.NewExtractor(envtag.SourceConfig{Header: "x-env", Cookie: "env", Query: "env"})
	if err != nil {
		t.Fatal(err)
	}
	if x.HeaderName() != "X-Env" {
		t.Errorf("HeaderName %q", x.HeaderName())
	}
	for _, tc := range []struct {
		h     http.Header
		q     string
		tag   string
		found bool
		bad   bool
	}{
		{http.Header{}, "", "", false, false},
		{http.Header{}, "env=proj-q", "proj-q", true, false},
		{http.Header{"Cookie": {"a=1", "env=proj-c"}}, "env=proj-q", "proj-c", true, false},
		{http.Header{"X-Env": {"proj-h"}, "Cookie": {"env=proj-c"}}, "env=proj-q", "proj-h", true, false},
		{http.Header{"Cookie": {`env="proj-c"`}}, "", "proj-c", true, false},
		{http.Header{"Cookie": {"env=a.b"}}, "env=proj-q", "", true, true},
		{http.Header{}, "env=", "", true, true},
	} {
		tag, found, err := x.TagFrom(tc.h, tc.q)
		if tag != tc.tag || found != tc.found || (err != nil) != tc.bad {
			t.Errorf("%v %q: got %q %v %v", tc.h, tc.q, tag, found, err)
		}
		if tc.bad && !errors.Is(err, propagation.ErrMalformed) {
			t.Errorf("%v %q: error %v does not wrap ErrMalformed", tc.h, tc.q, err)
		}
	}
}
