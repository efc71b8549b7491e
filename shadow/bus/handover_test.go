package bus_test

import (
	"reflect"
	"testing"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// The ledger of a trunk: spans skipped while a lane is live, closed when
// the trunk takes the env again, handed over once, persisted in commit
// metadata and read back by another instance.
func TestSkipsLedger(t *testing.T) {
	p0, p1 := bus.Partition{Topic: "orders", Partition: 0}, bus.Partition{Topic: "orders", Partition: 1}
	s := bus.NewSkips()
	if s.Tracking() {
		t.Fatal("an empty ledger tracks")
	}
	for _, off := range []int64{10, 11, 14} {
		s.Skip("proj-a", p0, off)
	}
	s.Skip("proj-a", p1, 3)
	s.Skip("proj-b", p0, 12)
	live := map[string]bool{"proj-a": true, "proj-b": true}
	takes := func(env string) bool { return !live[env] }
	if due := s.Due(takes); len(due) != 0 {
		t.Fatalf("hand-over due while the lanes are live: %v", due)
	}
	meta, ok := s.Metadata(p0)
	if want := "shadowlane.skips/1;proj-a=10-15;proj-b=12-13"; !ok || meta != want {
		t.Fatalf("metadata %q %v, want %q", meta, ok, want)
	}
	// proj-a leaves: its spans are due, once.
	live["proj-a"] = false
	due := s.Due(takes)
	want := map[string]bus.Backlog{"proj-a": {p0: {{10, 15}}, p1: {{3, 4}}}}
	if !reflect.DeepEqual(due, want) {
		t.Fatalf("due %v, want %v", due, want)
	}
	if again := s.Due(takes); len(again) != 0 {
		t.Fatalf("a running hand-over is due again: %v", again)
	}
	// While it runs its spans stay in the metadata.
	if meta, _ := s.Metadata(p1); meta != "shadowlane.skips/1;proj-a=3-4" {
		t.Fatalf("metadata during the hand-over %q", meta)
	}
	b := due["proj-a"]
	if !b.Owns(p0, 14) || b.Owns(p0, 15) || b.Owns(p0, 9) || b.End(p0) != 15 {
		t.Fatalf("backlog bounds wrong: %v", b)
	}
	b.Trim(func(p bus.Partition) (int64, bool) { return 20, p == p1 }) // the lane committed past p1
	delete(b, p0)                                                      // p0 handed over
	s.Done("proj-a", b)
	if meta, _ := s.Metadata(p0); meta != "shadowlane.skips/1;proj-b=12-13" {
		t.Fatalf("metadata after the hand-over %q", meta)
	}
	// Another instance reads the metadata back: proj-b's span is closed
	// there, and due once proj-b leaves.
	o := bus.NewSkips()
	if !o.Load(p0, "shadowlane.skips/1;proj-b=12-13") || !o.Tracking() {
		t.Fatal("metadata not loaded")
	}
	if due := o.Due(takes); len(due) != 0 {
		t.Fatalf("loaded span due while proj-b is live: %v", due)
	}
	live["proj-b"] = false
	if due := o.Due(takes); !reflect.DeepEqual(due, map[string]bus.Backlog{"proj-b": {p0: {{12, 13}}}}) {
		t.Fatalf("loaded span due %v", due)
	}
	// A span skipped in a later life of the lane stays apart from an
	// earlier one (the trunk handled what lies between).
	s2 := bus.NewSkips()
	s2.Skip("proj-a", p0, 5)
	s2.Left("proj-a")
	s2.Skip("proj-a", p0, 9)
	s2.Left("proj-a")
	if meta, _ := s2.Metadata(p0); meta != "shadowlane.skips/1;proj-a=5-6,9-10" {
		t.Fatalf("two lives merged: %q", meta)
	}
	// Floors: known once set, forgotten when the lane is live again.
	if _, known := s2.Floor("proj-a", p0); known {
		t.Fatal("floor known before it was read")
	}
	s2.SetFloor("proj-a", map[bus.Partition]int64{p0: 7})
	if at, known := s2.Floor("proj-a", p0); !known || at != 7 {
		t.Fatalf("floor %d %v", at, known)
	}
	if at, known := s2.Floor("proj-a", p1); !known || at != 0 {
		t.Fatalf("floor of a partition the lane never committed: %d %v", at, known)
	}
	s2.Skip("proj-a", p0, 20)
	if _, known := s2.Floor("proj-a", p0); known {
		t.Fatal("floor kept while the lane is live again")
	}
}

func TestParseMetadata(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string][]bus.Span
		ok   bool
	}{
		{"", nil, true},
		{"member-1234", nil, true}, // franz-go's default: the member id
		{"shadowlane.skips/1", nil, true},
		{"shadowlane.skips/1;proj-a=1-2,4-9;b_2=0-1", map[string][]bus.Span{"proj-a": {{1, 2}, {4, 9}}, "b_2": {{0, 1}}}, true},
		{"shadowlane.skips/1;proj-a=2-1", nil, false},
		{"shadowlane.skips/1;proj a=1-2", nil, false},
		{"shadowlane.skips/1;proj-a=", nil, false},
		{"shadowlane.skips/1;=1-2", nil, false},
		{"shadowlane.skips/1;proj-a=-1-2", nil, false},
		{"shadowlane.skips/1proj-a=1-2", nil, false},
	} {
		got, ok := bus.ParseMetadata(c.in)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseMetadata(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Whatever the metadata, parsing never panics, and what parses writes
// back the same spans.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"", "shadowlane.skips/1;proj-a=1-2,4-9;b=0-1", "shadowlane.skips/1;a=9223372036854775806-9223372036854775807", "shadowlane.skips/1;a=1-2;a=2-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		spans, ok := bus.ParseMetadata(in)
		if !ok || spans == nil {
			return
		}
		s := bus.NewSkips()
		p := bus.Partition{Topic: "t"}
		if !s.Load(p, in) {
			t.Fatalf("parsed but not loaded: %q", in)
		}
		meta, fits := s.Metadata(p)
		if !fits {
			return
		}
		again, ok := bus.ParseMetadata(meta)
		if !ok || !reflect.DeepEqual(again, spans) {
			t.Fatalf("%q -> %v -> %q -> %v", in, spans, meta, again)
		}
	})
}

func TestTrunkDecision(t *testing.T) {
	meta := "shadowlane.skips/1;proj-a=10-20;proj-b=5-6"
	for _, c := range []struct {
		committed        int64
		ok               bool
		meta, env        string
		off              int64
		skipped, decided bool
	}{
		{0, false, "", "proj-a", 3, false, false},    // the trunk never committed
		{12, true, meta, "proj-a", 12, false, false}, // not past it yet
		{30, true, meta, "proj-a", 12, true, true},   // skipped for the lane
		{30, true, meta, "proj-a", 25, false, true},  // handled by the trunk
		{30, true, meta, "proj-b", 12, false, true},  // another env's span
		{30, true, "", "proj-a", 12, false, true},    // no spans: the trunk's
	} {
		s, d := bus.TrunkDecision(c.committed, c.ok, c.meta, c.env, c.off)
		if s != c.skipped || d != c.decided {
			t.Errorf("%+v: skipped %v decided %v", c, s, d)
		}
	}
}
