package propagation_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
)

// Present and BaggageMayCarry must never say "no mark" for a baggage value
// that Extract reads a mark from, whatever the member names (also when the
// run and env members share no prefix).
func TestPresentAgreesWithExtract(t *testing.T) {
	for _, c := range []*propagation.Codec{
		propagation.DefaultCodec(),
		propagation.NewCodec(propagation.Names{RunMember: "lt.run", EnvMember: "env.tag"}),
	} {
		n := c.Names()
		for _, b := range []string{n.RunMember + "=r1", "user=alice," + n.EnvMember + "=proj-a", "user=alice", ""} {
			h := map[string][]string{}
			if b != "" {
				h["Baggage"] = []string{b}
			}
			w := c.Extract(headerGetter(h))
			if marked := !w.Mark.IsZero(); marked && (!c.Present(h) || !c.BaggageMayCarry(b)) {
				t.Errorf("names %+v, baggage %q: Extract finds %v but Present/BaggageMayCarry say no", n, b, w.Mark)
			}
			if b == "user=alice" && c.Present(h) && n.RunMember == propagation.DefaultNames.RunMember {
				t.Errorf("application baggage %q counted as a possible mark", b)
			}
		}
	}
}

type headerGetter map[string][]string

func (h headerGetter) Get(k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
