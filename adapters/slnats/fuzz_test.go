package slnats

import (
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"
)

// FuzzHeaderMark: a mark read from arbitrary headers is refused or valid,
// and survives a write/read round trip.
func FuzzHeaderMark(f *testing.F) {
	f.Add("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a")
	f.Add("x-shadowlane-run", "r 1", "X-Shadowlane-Run", "r1")
	f.Add("x-shadowlane-env", "", "other", "v")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := natsgo.Header{}
		h.Add(k1, v1)
		h.Add(k2, v2)
		d := decode(h)
		m, bad := d.Mark()
		if bad != 0 {
			if !m.IsZero() {
				t.Fatalf("refused headers gave mark %v", m)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted invalid mark: %v", err)
		}
		msg := &natsgo.Msg{Header: h}
		setHeaders(msg, m)
		d = decode(msg.Header)
		if back, bad := d.Mark(); bad != 0 || back != m {
			t.Fatalf("round trip %v -> %v %q", m, back, bad)
		}
	})
}

// FuzzSubset: a subject covered by a pattern is matched by it token by
// token, and covering never panics on arbitrary input.
func FuzzSubset(f *testing.F) {
	f.Add("orders.created", "orders.>")
	f.Add("orders.*", "orders.*")
	f.Add("a..b", "a.*.b")
	f.Add(">", "*")
	f.Fuzz(func(t *testing.T, sub, pattern string) {
		p, ok := tokens(pattern)
		if !ok {
			return
		}
		if !subset(sub, p) {
			return
		}
		st := strings.Split(sub, ".")
		for i, tok := range st {
			if tok == "" {
				t.Fatalf("%q covered by %q despite an empty token", sub, pattern)
			}
			if i >= len(p) {
				t.Fatalf("%q longer than %q", sub, pattern)
			}
			if p[i] == ">" {
				return
			}
			if p[i] != "*" && p[i] != tok {
				t.Fatalf("%q token %q not matched by %q", sub, tok, p[i])
			}
		}
		if len(st) != len(p) {
			t.Fatalf("%q shorter than %q", sub, pattern)
		}
	})
}
