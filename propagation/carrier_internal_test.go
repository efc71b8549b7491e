package propagation

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestFoldLenRange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi int
		ok     bool
	}{
		{"baggage", 7, 7, true},
		{"x-shadowlane-run", 16, 17, true}, // ſ for s
		{"k", 1, 3, true},                  // K (Kelvin sign) for k
		{"ks", 2, 5, true},
		{"", 0, 0, true},
		{"x-ünïcode", 0, 0, false},
	} {
		lo, hi, ok := foldLenRange(tc.name)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("foldLenRange(%q) = %d, %d, %v; want %d, %d, %v", tc.name, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

// Every rune that strings.EqualFold pairs with an ASCII byte is no longer
// than foldLenRange allows for that byte.
func TestFoldLenRangeAllRunes(t *testing.T) {
	if testing.Short() {
		t.Skip("walks every rune")
	}
	var longest [utf8.RuneSelf]int
	for b := range longest {
		_, longest[b], _ = foldLenRange(string(rune(b)))
	}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) || unicode.SimpleFold(r) == r { // no other case: folds to nothing else
			continue
		}
		s := string(r)
		for b := 0; b < utf8.RuneSelf; b++ {
			if strings.EqualFold(s, string(rune(b))) && utf8.RuneLen(r) > longest[b] {
				t.Fatalf("%q folds to %q but is %d bytes; foldLenRange allows %d", r, rune(b), utf8.RuneLen(r), longest[b])
			}
		}
	}
}
