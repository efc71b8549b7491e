package limiter

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestIndexMatchesMatch: the rule index finds exactly the rules that
// Match finds by scanning, in rule order.
func TestIndexMatchesMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"", "a", "b", "orders", ":id", "*", "a*", "[ab]", "?", "redis:GET", "redis:*", "x\\*", "42"}
	pick := func(n int, allowStar bool) string {
		s := ""
		for i := range n {
			if i > 0 {
				s += "/"
			}
			g := segs[rng.IntN(len(segs))]
			for g == "*" && !allowStar {
				g = segs[rng.IntN(len(segs))]
			}
			s += g
		}
		return s
	}
	var rules []Rule
	for i := range 400 {
		rules = append(rules, Rule{Name: fmt.Sprint(i), Resource: pick(1+rng.IntN(4), true), QPS: 1})
	}
	ix := newIndex(rules)
	names := []string{"", "/", "a", "a/b", "orders/42", "redis:GET", "a/", "/a", "x*", ":id", "a/b/c/d", "*"}
	for range 3000 {
		names = append(names, pick(1+rng.IntN(5), true))
	}
	for _, name := range names {
		var want []int
		for i := range rules {
			if Match(rules[i].Resource, name) {
				want = append(want, i)
			}
		}
		got := ix.lookup(name)
		if !slices.Equal(got, want) {
			t.Fatalf("%q: index %v, scan %v", name, got, want)
		}
	}
}

// FuzzIndex: for any rule pattern and resource name, the index finds the
// rule exactly when Match does.
func FuzzIndex(f *testing.F) {
	for _, s := range [][2]string{
		{"GET /orders/:id", "GET /orders/42"}, {"*", "x"}, {"a/*", "a/"}, {"redis:[GS]ET", "redis:GET"},
		{"x\\*", "x*"}, {"*/b", "/b"}, {"a*b/:c/*", "axb/1/2/3"}, {":a", ""}, {"[", "["},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if validPattern(pattern) != nil {
			return
		}
		ix := newIndex([]Rule{{Resource: pattern, QPS: 1}})
		got := len(ix.lookup(name)) == 1
		if want := Match(pattern, name); got != want {
			t.Fatalf("pattern %q name %q: index %v, Match %v", pattern, name, got, want)
		}
	})
}
