package sqlite

import (
	"strings"
	"testing"
)

// TestIsKeyword: isKeyword agrees with token.kw's upper-casing on ASCII,
// non-ASCII (ſ upper-cases to S) and long names.
func TestIsKeyword(t *testing.T) {
	for _, s := range []string{"select", "SELECT", "Select", "ſelect", "current_timestamp", "CURRENT_TIMESTAMPS", "orders", "", "x", "in", "ın", "ﬀ", strings.Repeat("a", 40), "ſ" + strings.Repeat("a", 20)} {
		if got, want := isKeyword(s), keywords[strings.ToUpper(s)] != 0; got != want {
			t.Errorf("isKeyword(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestFoldSig: ASCII names equal in any letter case share a signature;
// isASCII sees a non-ASCII byte anywhere.
func TestFoldSig(t *testing.T) {
	if foldSig("Orders") != foldSig("oRDERS") || foldSig("orders") == foldSig("ordersx") || foldSig("") != 0 ||
		!isASCII("orders_shadow") || isASCII("\u212A") || isASCII("orders_shadow\u212A") {
		t.Fatal("foldSig")
	}
}

// TestByteClass: joins and the bare-name bytes agree with their
// definitions.
func TestByteClass(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		want := b == '_' || b == '$' || b == '"' || b == '\'' || b == '`' || b == '[' || b == ']' || b >= 0x80 ||
			'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if joins(b) != want {
			t.Errorf("joins(%q) = %v", b, !want)
		}
		if bare := byteClass[b]&cBare != 0; bare != (isIdentChar(b) && b < 0x80) {
			t.Errorf("bare %q = %v", b, bare)
		}
	}
}
