package slkafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzHeaderMark checks that a mark read from arbitrary headers is either
// refused or valid, and survives a write/read round trip unchanged.
func FuzzHeaderMark(f *testing.F) {
	f.Add("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a")
	f.Add("x-shadowlane-run", "r 1", "other", "v")
	f.Add("X-SHADOWLANE-ENV", "", "X-Shadowlane-Env", "b")
	f.Add("X-Shadowlane-Run", "a", "x-shadowlane-run", "a")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		hs := []kgo.RecordHeader{{Key: k1, Value: []byte(v1)}, {Key: k2, Value: []byte(v2)}}
		d := decode(&kgo.Record{Headers: hs})
		m, bad := d.Mark()
		if bad != 0 {
			if !m.IsZero() {
				t.Fatalf("refused headers returned mark %v", m)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid mark: %v", err)
		}
		r := &kgo.Record{Headers: hs}
		setHeaders(r, m)
		d = decode(r)
		back, bad := d.Mark()
		if bad != 0 || back != m {
			t.Fatalf("round trip: %v -> %v (%q)", m, back, bad)
		}
		if m.IsZero() && len(r.Headers) > 2 {
			t.Fatalf("zero mark grew headers: %v", r.Headers)
		}
	})
}
