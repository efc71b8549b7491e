package enumname

import "testing"

func TestString(t *testing.T) {
	names := []string{"", "one", "two"}
	for _, c := range []struct {
		v    int32
		want string
	}{{1, "one"}, {2, "two"}, {0, "Num(0)"}, {3, "Num(3)"}, {-1, "Num(-1)"}} {
		if got := String(names, c.v, "Num"); got != c.want {
			t.Errorf("String(%d) = %q, want %q", c.v, got, c.want)
		}
	}
	if got := String([]string{"zero"}, uint8(0), "U"); got != "zero" {
		t.Errorf("uint8 0: %q", got)
	}
}
