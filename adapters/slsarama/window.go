package slsarama

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// laneWindow is a lane's start window for one plan of a [Consumer]
// (issue 18: a late lane's start window handled messages twice). A new
// lane group's start is pinned at the newest offset with
// [bus.StartMetadata] before the lane is listed; the trunk handles the
// lane's messages until it sees the lane listed. So, on each partition
// whose commit carries that metadata, the lane checks its messages
// against the trunk group's commits ([bus.TrunkDecision]): one the trunk
// handled is passed over (counted, StartSkipped); the first one the trunk
// skipped closes the window. The lane's marks carry the metadata while
// the window is open, so it survives a restart.
type laneWindow struct {
	bus.StartWindow
	c  *Consumer
	p  Plan
	cl sarama.Client

	mu    sync.Mutex
	trunk *sarama.OffsetFetchResponse
}

// load opens the window of the claimed partitions whose commit carries
// [bus.StartMetadata].
func (w *laneWindow) load(claims map[string][]int32) error {
	tp := &trunkPlan{c: w.c, p: w.p, cl: w.cl}
	offs, err := tp.committed(w.p.Group)
	if err != nil || offs == nil {
		return err
	}
	for t, ps := range claims {
		for _, p := range ps {
			if b := offs.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError {
				w.Load(bus.Partition{Topic: t, Partition: p}, b.Metadata)
			}
		}
	}
	return nil
}

// trunkSkipped reports whether the trunk skipped the lane's message at off
// of pt (the lane's to handle) rather than handled it, waiting (bounded)
// until the trunk group committed past it. A partition the trunk never
// committed has no trunk: the lane's.
func (w *laneWindow) trunkSkipped(ctx context.Context, env string, pt bus.Partition, off int64) (bool, error) {
	g := w.c.s.c.groups.TrunkGroup(w.c.group, w.p)
	tp := &trunkPlan{c: w.c, p: w.p, cl: w.cl}
	deadline := time.Now().Add(10 * time.Second)
	for fresh := false; ; fresh = true {
		w.mu.Lock()
		offs := w.trunk
		w.mu.Unlock()
		if offs != nil {
			if b := offs.GetBlock(pt.Topic, pt.Partition); b != nil && b.Err == sarama.ErrNoError {
				if skipped, decided := bus.TrunkDecision(b.Offset, b.Offset >= 0, b.Metadata, env, off); decided {
					return skipped, nil
				}
				if fresh && b.Offset < 0 {
					return true, nil // no trunk on this partition
				}
			}
		}
		if time.Now().After(deadline) {
			return true, nil // the trunk did not get there: the lane's
		}
		if fresh {
			t := time.NewTimer(w.c.s.c.poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			case <-t.C:
			}
		}
		offs, err := tp.committed(g)
		if err != nil {
			return false, fmt.Errorf("slsarama: read the trunk group %q: %w", g, err)
		}
		if offs == nil {
			return true, nil // no trunk group
		}
		w.mu.Lock()
		w.trunk = offs
		w.mu.Unlock()
	}
}
