package cfgfile

import (
	"slices"
	"testing"
)

func TestWhere(t *testing.T) {
	for _, c := range []struct {
		line, col int
		want      string
	}{{12, 5, "line 12, column 5"}, {3, 0, "line 3"}, {0, 7, ""}, {0, 0, ""}} {
		if got := Where(c.line, c.col); got != c.want {
			t.Errorf("Where(%d, %d) = %q, want %q", c.line, c.col, got, c.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a, ,b ,,c "); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("SplitList = %q", got)
	}
	if got := SplitList(""); got != nil {
		t.Errorf("SplitList(\"\") = %q, want nil", got)
	}
}
