package bus

import (
	"errors"
	"testing"
)

func TestEpochsOwnership(t *testing.T) {
	var e Epochs
	if e.Owns(1) || e.IsOpen() || e.Backlog() {
		t.Fatal("zero Epochs owns something")
	}
	e, err := e.Open(Boundary(10, 4)) // [11, ...)
	if err != nil || !e.IsOpen() {
		t.Fatal(e, err)
	}
	if again, _ := e.Open(50); again.List[0].Start != 11 || len(again.List) != 1 {
		t.Errorf("re-open moved the open epoch: %v", again)
	}
	for seq, want := range map[uint64]bool{10: false, 11: true, 1000: true} {
		if e.Owns(seq) != want {
			t.Errorf("open [11,): owns %d = %v", seq, !want)
		}
	}
	if e, err = e.Close(Boundary(20, 30)); err != nil || e.IsOpen() || e.End() != 31 || !e.Backlog() {
		t.Fatal(e, err)
	}
	if _, err := e.Open(5); !errors.Is(err, ErrEpochs) {
		t.Errorf("open before the last end: %v", err)
	}
	if e, err = e.Open(40); err != nil {
		t.Fatal(err)
	}
	for seq, want := range map[uint64]bool{10: false, 11: true, 30: true, 31: false, 39: false, 40: true} {
		if e.Owns(seq) != want {
			t.Errorf("%v: owns %d = %v", e, seq, !want)
		}
	}
	if e.Backlog() {
		t.Error("an open epoch counts as a backlog to hand over")
	}
	e, _ = e.Close(40)
	e = e.HandOver()
	if e.Backlog() || e.HandedOver != 40 {
		t.Errorf("after hand-over: %v", e)
	}
	back, err := ParseEpochs(e.String())
	if err != nil || back.String() != e.String() {
		t.Errorf("round trip %q -> %q, %v", e.String(), back.String(), err)
	}
}

func TestEpochsBounded(t *testing.T) {
	var e Epochs
	for i := uint64(1); i <= 2*MaxEpochs; i++ {
		var err error
		if e, err = e.Open(2 * i); err != nil {
			t.Fatal(err)
		}
		if e, err = e.Close(2*i + 1); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.List) != MaxEpochs || e.List[0].Start != 2*(MaxEpochs+1) {
		t.Errorf("kept %d epochs from %d", len(e.List), e.List[0].Start)
	}
	if _, err := ParseEpochs(e.String()); err != nil {
		t.Error(err)
	}
}

func TestParseEpochsRefuses(t *testing.T) {
	for _, s := range []string{"x", "h=;1-2", "h=0;0-", "h=0;5-3", "h=0;1-,4-", "h=0;4-6,5-", "h=0;1-2,x", "h=-1;"} {
		if _, err := ParseEpochs(s); !errors.Is(err, ErrEpochs) {
			t.Errorf("ParseEpochs(%q) = %v", s, err)
		}
	}
}

func TestLaneNameFor(t *testing.T) {
	for _, c := range [][3]string{{"work", "proj-a", "work-proj-a"}, {"work-proj-a", "proj-a", "work-proj-a"}, {"work", "", "work"}} {
		if got := LaneNameFor(c[0], c[1]); got != c[2] {
			t.Errorf("LaneNameFor(%q, %q) = %q", c[0], c[1], got)
		}
	}
}

func FuzzParseEpochs(f *testing.F) {
	for _, s := range []string{"", "h=0;", "h=3;1-3,5-", "h=0;1-2,2-9,10-", "h=0;0-1", "h=1;2-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEpochs(s)
		if err != nil {
			return
		}
		back, err := ParseEpochs(e.String())
		if err != nil || back.String() != e.String() {
			t.Fatalf("%q -> %q does not round-trip: %v", s, e.String(), err)
		}
		for i := 1; i < len(e.List); i++ {
			if e.List[i-1].End == 0 || e.List[i].Start < e.List[i-1].End {
				t.Fatalf("%q: epochs out of order: %v", s, e.List)
			}
		}
	})
}

func TestCounters(t *testing.T) {
	c := NewCounters("test")
	c.Forwarded()
	c.Forwarded()
	c.HandedOver(1)
	c.HandedOver(2)
	c.Redelivered()
	c.FloorSkipped(1)
	c.Uncommitted(2, 1)
	c.StartSkipped(4)
	c.Unpersisted()
	want := Stats{Forwarded: 2, HandedOver: 3, Redelivered: 1, FloorSkipped: 1, Uncommitted: 2, RefusedUncommitted: 1, StartSkipped: 4, Unpersisted: 1}
	if got := c.Snapshot(); got != want {
		t.Errorf("snapshot %+v, want %+v", got, want)
	}
	if n := testing.AllocsPerRun(100, c.Forwarded); n != 0 {
		t.Errorf("Forwarded allocates %v", n)
	}
	if n := testing.AllocsPerRun(100, func() { c.Uncommitted(1, 0) }); n != 0 {
		t.Errorf("Uncommitted allocates %v", n)
	}
}
