package sqlite

import (
	"strings"
	"testing"
)

// TestIsKeyword: isKeyword agrees with token.kw's upper-casing on ASCII,
// non-ASCII (ſ upper-cases to S) and long names.
func TestIsKeyword(t *testing.T) {
	for _, s := range []string{"select", "SELECT", "Select", "ſelect", "current_timestamp", "CURRENT_TIMESTAMPS", "orders", "", "x", "in", "ın", "ﬀ", strings.Repeat("a", 40), "ſ" + strings.Repeat("a", 20)} {
		if got, want := isKeyword(s), keywords[strings.ToUpper(s)]; got != want {
			t.Errorf("isKeyword(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestFoldSig: names equal in any letter case share a signature; 0 for
// non-ASCII.
func TestFoldSig(t *testing.T) {
	if foldSig("Orders") != foldSig("oRDERS") || foldSig("orders") == foldSig("ordersx") || foldSig("\u212A") != 0 || foldSig("") != 0 {
		t.Fatal("foldSig")
	}
}
