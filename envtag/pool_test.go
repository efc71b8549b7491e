package envtag_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

func uniq(p string) string { return fmt.Sprintf("%s-%x", p, rand.Uint32()) }

func members(spec ...string) []envtag.Member[string] {
	// spec items: "env=name" ready, "env=name?" pending.
	var out []envtag.Member[string]
	for _, s := range spec {
		var env, name string
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				env, name = s[:i], s[i+1:]
			}
		}
		pending := name != "" && name[len(name)-1] == '?'
		out = append(out, envtag.Member[string]{Env: env, Item: name, Pending: pending})
	}
	return out
}

func mustPolicy(t testing.TB, c envtag.Config) *envtag.Policy {
	t.Helper()
	p, err := envtag.NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSelectionRule(t *testing.T) {
	all := members("=t1", "proj-a=a1", "proj-b=b1", "proj-base=base1")
	fb := envtag.Config{Fallback: map[string][]string{"proj-x": {"proj-gone", "proj-base"}, "*": {"proj-b"}}}
	tests := []struct {
		name    string
		cfg     envtag.Config
		members []envtag.Member[string]
		tag     string
		want    string // "" = error
		pending bool
	}{
		{"untagged to trunk", envtag.Config{}, all, "", "t1", false},
		{"tag to its lane", envtag.Config{}, all, "proj-a", "a1", false},
		{"unknown tag to trunk", envtag.Config{}, all, "proj-z", "t1", false},
		{"malformed tag to trunk", envtag.Config{}, all, "a b", "t1", false},
		{"fallback chain in order", fb, all, "proj-x", "base1", false},
		{"any-tag fallback", fb, all, "proj-q", "b1", false},
		{"own lane beats fallback", fb, all, "proj-a", "a1", false},
		{"strict hit", envtag.Config{Strict: true}, all, "proj-a", "a1", false},
		{"strict miss", envtag.Config{Strict: true}, all, "proj-z", "", false},
		{"strict ignores fallback", envtag.Config{Strict: true, Fallback: fb.Fallback}, all, "proj-x", "", false},
		{"strict untagged still trunk", envtag.Config{Strict: true}, all, "", "t1", false},
		{"per-service strict", envtag.Config{StrictServices: []string{"svc"}}, all, "proj-z", "", false},
		{"per-service strict other", envtag.Config{StrictServices: []string{"other"}}, all, "proj-z", "t1", false},
		{"untagged never to project", envtag.Config{}, members("proj-a=a1", "proj-b=b1"), "", "", false},
		{"untagged waits for connecting trunk", envtag.Config{}, members("=t1?", "proj-a=a1"), "", "", true},
		{"tag falls back while lane connects", envtag.Config{}, members("=t1", "proj-a=a1?"), "proj-a", "t1", false},
		{"strict waits for connecting lane", envtag.Config{Strict: true}, members("=t1", "proj-a=a1?"), "proj-a", "", true},
		{"malformed label is not trunk", envtag.Config{}, members("bad label=x", "proj-a=a1"), "", "", false},
		{"empty pool", envtag.Config{}, nil, "proj-a", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := envtag.NewPool("svc", mustPolicy(t, tc.cfg), tc.members)
			got, err := p.Pick(propagation.Mark{Env: tc.tag})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("picked %q, want an error", got)
				}
				if !errors.Is(err, envtag.ErrNoLane) {
					t.Fatalf("error %v is not ErrNoLane", err)
				}
				if errors.Is(err, envtag.ErrPending) != tc.pending {
					t.Fatalf("error %v: pending %v, want %v", err, !tc.pending, tc.pending)
				}
				var re *envtag.RouteError
				if !errors.As(err, &re) || re.Service != "svc" || re.Tag != tc.tag {
					t.Fatalf("error %#v does not name service and tag", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("picked %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestPoolRoundRobinAndCounters(t *testing.T) {
	svc := uniq("svc")
	p := envtag.NewPool(svc, &envtag.Policy{}, members("=t1", "=t2", "proj-a=a1", "proj-a=a2", "proj-a=a3", "x y=bad"))
	if p.Invalid() != 1 || p.Ready("proj-a") != 3 || p.Ready("") != 2 {
		t.Fatalf("invalid %d ready a %d trunk %d", p.Invalid(), p.Ready("proj-a"), p.Ready(""))
	}
	if got := fmt.Sprint(p.Envs()); got != "[ proj-a]" {
		t.Fatalf("envs %s", got)
	}
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		v, err := p.Pick(propagation.Mark{Env: "proj-a"})
		if err != nil {
			t.Fatal(err)
		}
		seen[v]++
	}
	if seen["a1"] != 10 || seen["a2"] != 10 || seen["a3"] != 10 {
		t.Fatalf("round robin spread %v", seen)
	}
	for i := 0; i < 4; i++ {
		p.Pick(propagation.Mark{})
		p.Pick(propagation.Mark{Run: "r1", Env: "proj-q"})
	}
	strict := envtag.NewPool(svc, mustPolicy(t, envtag.Config{Strict: true}), members("=t1"))
	strict.Pick(propagation.Mark{Run: "r1", Env: "proj-q"})

	prod := envtag.Lookup(svc, propagation.ClassProduction)
	lt := envtag.Lookup(svc, propagation.ClassLoadTest)
	if prod.Lane != 30 || prod.Trunk != 4 || prod.Fallback != 0 || prod.Miss != 0 {
		t.Errorf("production counts %+v", prod)
	}
	if lt.Fallback != 4 || lt.Miss != 1 || lt.Lane != 0 {
		t.Errorf("load-test counts %+v", lt)
	}
}

func TestPickAllocs(t *testing.T) {
	p := envtag.NewPool(uniq("svc"), nil, members("=t1", "=t2", "proj-a=a1", "proj-a=a2"))
	for _, m := range []propagation.Mark{{}, {Env: "proj-a"}, {Run: "r", Env: "proj-z"}} {
		if n := testing.AllocsPerRun(100, func() { p.Pick(m) }); n != 0 {
			t.Errorf("Pick(%v) allocates %v times", m, n)
		}
	}
}

func TestDefaultPolicyIsReadAtPick(t *testing.T) {
	p := envtag.NewPool(uniq("svc"), nil, members("=t1"))
	envtag.SetDefaultPolicy(mustPolicy(t, envtag.Config{Strict: true}))
	_, err := p.Pick(propagation.Mark{Env: "proj-a"})
	envtag.SetDefaultPolicy(nil)
	if !errors.Is(err, envtag.ErrNoLane) {
		t.Fatalf("global strict not applied: %v", err)
	}
	if v, err := p.Pick(propagation.Mark{Env: "proj-a"}); v != "t1" {
		t.Fatalf("after reset: %q %v", v, err)
	}
}

func TestNewPolicyValidates(t *testing.T) {
	bad := []envtag.Config{
		{Fallback: map[string][]string{"proj a": {"x"}}},
		{Fallback: map[string][]string{"proj-a": {""}}},
		{Fallback: map[string][]string{"proj-a": {"proj-a"}}},
		{StrictServices: []string{""}},
	}
	for _, c := range bad {
		if _, err := envtag.NewPolicy(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	p := mustPolicy(t, envtag.Config{StrictServices: []string{"orders"}, Fallback: map[string][]string{"proj-a": {"proj-b"}}})
	if got := fmt.Sprintf("%q", p.Chain("users", "proj-a")); got != `["proj-a" "proj-b" ""]` {
		t.Errorf("chain %s", got)
	}
	if got := fmt.Sprintf("%q", p.Chain("orders", "proj-a")); got != `["proj-a"]` {
		t.Errorf("strict chain %s", got)
	}
	if got := fmt.Sprintf("%q", p.Chain("orders", "")); got != `[""]` {
		t.Errorf("untagged chain %s", got)
	}
}

func TestSelf(t *testing.T) {
	t.Setenv(envtag.EnvVar, "")
	if e, err := envtag.Self(); e != "" || err != nil {
		t.Fatalf("unset: %q %v", e, err)
	}
	t.Setenv(envtag.EnvVar, "proj-42")
	if e, err := envtag.Self(); e != "proj-42" || err != nil {
		t.Fatalf("proj-42: %q %v", e, err)
	}
	t.Setenv(envtag.EnvVar, "proj 42")
	if e, err := envtag.Self(); e != "" || !errors.Is(err, propagation.ErrMalformed) {
		t.Fatalf("malformed label must be an error, not trunk: %q %v", e, err)
	}
}
