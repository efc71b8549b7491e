package sqlshadow

import (
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow"
)

func TestContainsFold(t *testing.T) {
	for _, c := range []struct {
		s, n string
		want bool
	}{
		{"SELECT * FROM orders_shadow", "_shadow", true},
		{"SELECT * FROM ORDERS_SHADOW", "_shadow", true},
		{"SELECT * FROM orders_shado", "_shadow", false},
		{"shadow_x", "shadow_", true},
		{"SHADOW_X", "shadow_", true},
		{"", "_shadow", false},
		{"__shadow", "_shadow", true},
	} {
		if got := containsFold(c.s, c.n); got != c.want || got != strings.Contains(strings.ToLower(c.s), c.n) {
			t.Errorf("containsFold(%q, %q) = %v", c.s, c.n, got)
		}
	}
	if !isShadowFold(shadow.DefaultTable, "Orders_SHADOW") || isShadowFold(shadow.DefaultTable, "orders") {
		t.Error("isShadowFold")
	}
}

func FuzzContainsFold(f *testing.F) {
	f.Add("SELECT * FROM orders_Shadow", "_shadow")
	f.Fuzz(func(t *testing.T, s, n string) {
		n = strings.ToLower(n)
		for i := 0; i < len(n); i++ {
			if n[i] >= 0x80 {
				return
			}
		}
		if containsFold(s, n) != strings.Contains(asciiLower(s), n) {
			t.Fatalf("containsFold(%q, %q) disagrees", s, n)
		}
	})
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
