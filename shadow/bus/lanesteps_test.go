package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// broker is a bus.Broker whose answers are fixed; each call first runs
// during (the switch going off while a step waits on the broker).
type broker struct {
	floor   int64
	skipped bool
	err     error
	during  func()
	calls   int
}

func (b *broker) Floor(context.Context, string, bus.Partition) (int64, error) {
	b.calls++
	b.during()
	return b.floor, b.err
}

func (b *broker) TrunkSkipped(context.Context, string, bus.Partition, int64) (bool, error) {
	b.calls++
	b.during()
	return b.skipped, b.err
}

func TestConsumeRecordReadsTheSwitchAfterTheLaneSteps(t *testing.T) {
	var on atomic.Bool
	var names bus.Names
	names.Add("orders")
	lanes := envtag.StaticLanes{"g": {"proj-a"}}
	trunk := rules(t, bus.Config{Names: names, Lanes: lanes, LoadTest: on.Load})
	lane := rules(t, bus.Config{Store: trunk.Config().Store, Names: names, Env: "proj-a", Lanes: lanes, LoadTest: on.Load})
	p := bus.Partition{Topic: "orders_shadow", Partition: 3}
	off := func() { on.Store(false) }
	ctx := context.Background()

	// The trunk takes proj-b's record (no live lane) after reading its
	// floor; the switch goes off while the floor is read: the record waits.
	on.Store(true)
	b := &broker{during: off}
	s := &bus.LaneSteps{Skips: bus.NewSkips(), Broker: b, Counts: bus.NewCounters("test")}
	d, err := trunk.ConsumeRecord(ctx, "g", p, 10, decode("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-b"), s)
	if err != nil || d.Action != bus.Wait || !errors.Is(d.Err, shadow.ErrKillSwitch) || b.calls != 1 {
		t.Fatalf("floor step, switch off meanwhile: %v %v (%v), %d broker calls", d.Action, d.Err, err, b.calls)
	}
	// With the switch on it is handled; below the floor it is passed over.
	on.Store(true)
	b.during = func() {}
	if d, _ := trunk.ConsumeRecord(ctx, "g", p, 10, decode("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-b"), s); d.Action != bus.Handle {
		t.Fatalf("floor step, switch on: %v", d.Action)
	}
	b.floor = 11
	if d, _ := trunk.ConsumeRecord(ctx, "g", p, 10, decode("X-Shadowlane-Env", "proj-b"), s); d.Action != bus.Skip || s.Counts.Snapshot().FloorSkipped != 1 {
		t.Fatalf("below the floor: %v %+v", d.Action, s.Counts.Snapshot())
	}
	// A live lane's record is skipped and noted in the ledger.
	if d, _ := trunk.ConsumeRecord(ctx, "g", p, 12, decode("X-Shadowlane-Env", "proj-a"), s); d.Action != bus.Skip || !s.Skips.Has("proj-a") {
		t.Fatalf("live lane: %v, ledger has it %v", d.Action, s.Skips.Has("proj-a"))
	}
	// A broker error is the step's.
	b.err = errors.New("broker away")
	if _, err := trunk.ConsumeRecord(ctx, "g", p, 13, decode("X-Shadowlane-Env", "proj-b"), s); !errors.Is(err, b.err) {
		t.Fatalf("broker error: %v", err)
	}

	// A lane instance's start window: the trunk skipped the record (the
	// lane's), and the switch went off while that was read: it waits.
	var w bus.StartWindow
	w.Load(p, bus.StartMetadata)
	b = &broker{skipped: true, during: off}
	s = &bus.LaneSteps{Window: &w, Broker: b, Counts: bus.NewCounters("test")}
	d, err = lane.ConsumeRecord(ctx, "g", p, 5, decode("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a"), s)
	if err != nil || d.Action != bus.Wait || !errors.Is(d.Err, shadow.ErrKillSwitch) || w.IsOpen(p) {
		t.Fatalf("window step, switch off meanwhile: %v %v (%v), window open %v", d.Action, d.Err, err, w.IsOpen(p))
	}
	// The trunk handled it: passed over, counted.
	on.Store(true)
	w.Load(p, bus.ReopenMetadata)
	b.skipped, b.during = false, func() {}
	if d, _ := lane.ConsumeRecord(ctx, "g", p, 6, decode("X-Shadowlane-Run", "r1", "X-Shadowlane-Env", "proj-a"), s); d.Action != bus.Skip || s.Counts.Snapshot().StartSkipped != 1 {
		t.Fatalf("trunk handled it: %v %+v", d.Action, s.Counts.Snapshot())
	}

	// Without steps it is the consume rule.
	on.Store(false)
	if d, _ := trunk.ConsumeRecord(ctx, "g", p, 1, decode("X-Shadowlane-Run", "r1"), nil); d.Action != bus.Wait {
		t.Fatalf("no steps: %v", d.Action)
	}

	// An unmarked record costs no allocation.
	s = &bus.LaneSteps{Skips: bus.NewSkips(), Broker: b, Counts: bus.NewCounters("test")}
	var dec bus.Decoder
	if n := testing.AllocsPerRun(100, func() { _, _ = trunk.ConsumeRecord(ctx, "g", bus.Partition{Topic: "orders"}, 1, &dec, s) }); n != 0 {
		t.Errorf("unmarked record: %v allocations", n)
	}
}
