package slkafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// window is a lane's start window for one plan (issue 18: a late lane's
// start window handled records twice). A new lane group starts at the
// end of its topics, pinned before the lane is listed; the trunk handles
// the lane's records until it sees the lane listed. So, on each partition
// pinned with [bus.StartMetadata], the lane checks its records against the
// trunk group's commits ([bus.TrunkDecision]): a record the trunk handled
// is passed over (counted, StartSkipped); the first one the trunk skipped
// closes the window, and the lane takes the partition from there. The
// window stays open across restarts (the lane's commits carry the
// metadata while it is open).
type window struct {
	bus.StartWindow
	mu    sync.Mutex
	trunk kadm.OffsetResponses // the trunk group's last read commits
}

// TrunkSkipped reports whether the trunk skipped the lane's record at off
// of pt (the lane's to handle) rather than handled it, waiting (bounded)
// until the trunk group committed past it. A partition the trunk never
// committed has no trunk: the lane's.
func (lb *laneBroker) TrunkSkipped(ctx context.Context, env string, pt bus.Partition, off int64) (bool, error) {
	c, cl, p, w := lb.c, lb.cl, lb.p, lb.w
	g := c.s.c.groups.TrunkGroup(c.group, p)
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		o, ok := w.trunk.Lookup(pt.Topic, pt.Partition)
		w.mu.Unlock()
		if ok && o.Err == nil {
			if skipped, decided := bus.TrunkDecision(o.At, true, o.Metadata, env, off); decided {
				return skipped, nil
			}
		}
		if time.Now().After(deadline) {
			return true, nil // the trunk did not get there: the lane's
		}
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		offs, err := kadm.NewClient(cl).FetchOffsets(fctx, g)
		cancel()
		if errors.Is(err, kerr.GroupIDNotFound) {
			return true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			return false, fmt.Errorf("slkafka: read the trunk group %q: %w", g, err)
		}
		w.mu.Lock()
		w.trunk = offs
		w.mu.Unlock()
		if o, ok := offs.Lookup(pt.Topic, pt.Partition); !ok || o.Err != nil || o.At < 0 {
			return true, nil // no trunk on this partition
		}
		if o, _ := offs.Lookup(pt.Topic, pt.Partition); o.At <= off {
			t := time.NewTimer(c.s.c.poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, context.Cause(ctx)
			case <-t.C:
			}
		}
	}
}

// reopenWindow commits a leaving lane's committed offsets again with
// [bus.ReopenMetadata], so that its start window is open on every partition
// when it (or another instance of it) joins again. A failure leaves the
// window closed: the lane then handles again what the trunk took while it
// was away (the documented limit).
func reopenWindow(ctx context.Context, cl *kgo.Client) {
	offs := cl.CommittedOffsets()
	if len(offs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	cl.CommitOffsetsSync(commitCtx(cctx, func(bus.Partition) string { return bus.ReopenMetadata }), offs, nil)
}
