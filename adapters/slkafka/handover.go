package slkafka

// Hand-over of a removed lane's backlog to the trunk (issue 16 item 4);
// the client-neutral rules (the skip ledger, its commit metadata, the
// lane floor) are package shadow/bus's (handover.go there). This file is
// the franz-go glue.
//
// While env E has a live lane for a consumer group G, the trunk consumer
// skips E's records (and commits past them in G, with the spans it skipped
// in the commit metadata); the lane instance takes them in its own group
// "G-E". When E leaves the lanes, the lane instance stops at once and
// leaves its group; its committed offsets are the hand-over point. The
// trunk consumer notices (a Handle of an E record, or its poll timing out
// while it holds spans) and hands the backlog over to itself: it joins the
// lane's group "G-E" as a member (so it and a returning lane never hold
// one partition at once, and its commits are fenced by the group's
// generation), reads every partition from the lane's committed offset,
// handles E's records inside the spans it skipped, commits them in the
// lane's group, and leaves. A trunk instance that gets a partition (a
// rebalance, a restart) reads the spans back from the partition's
// committed metadata, so a restart does not forget a backlog.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// handovers is the trunk side of the hand-over for one plan.
type handovers struct {
	*bus.Skips
	wg sync.WaitGroup
}

func newHandovers() *handovers { return &handovers{Skips: bus.NewSkips()} }

func part(r *kgo.Record) bus.Partition { return bus.Partition{Topic: r.Topic, Partition: r.Partition} }

// assigned queues the partitions franz-go assigned (OnPartitionsAssigned)
// until the poll loop reads their committed metadata (loadCommitted).
type assigned struct {
	mu sync.Mutex
	m  map[string][]int32
}

func (a *assigned) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string][]int32{}
	}
	for t, ps := range m {
		a.m[t] = append(a.m[t], ps...)
	}
}

// loadCommitted reads group's commits of the partitions assigned since
// the last call and hands the metadata of each to load: the trunk's spans
// (a partition taken over, a restart), a lane's start window.
func loadCommitted(ctx context.Context, cl *kgo.Client, group string, a *assigned, load func(bus.Partition, string)) error {
	a.mu.Lock()
	as := a.m
	a.m = nil
	a.mu.Unlock()
	if len(as) == 0 {
		return nil
	}
	var offs kadm.OffsetResponses
	err := retry(ctx, 1, func() error {
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		var err error
		offs, err = kadm.NewClient(cl).FetchOffsets(fctx, group)
		return err
	})
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("slkafka: group %q: read the committed metadata: %w", group, err)
	}
	for t, ps := range as {
		for _, p := range ps {
			if o, ok := offs.Lookup(t, p); ok && o.Err == nil && o.Metadata != "" {
				load(bus.Partition{Topic: t, Partition: p}, o.Metadata)
			}
		}
	}
	return nil
}

// metaOf returns the commit metadata of a partition: the trunk's spans
// (h), a lane's start window (w), or nil (franz-go's default).
func (c *Consumer) metaOf(h *handovers, w *window) func(bus.Partition) string {
	switch {
	case h != nil:
		return func(p bus.Partition) string {
			meta, ok := h.Metadata(p)
			if !ok {
				c.s.obs.Unpersisted()
			}
			return meta
		}
	case w != nil:
		return w.Metadata
	}
	return nil
}

// commitCtx returns ctx carrying the hook that writes each partition's
// metadata (meta) into the commit.
func commitCtx(ctx context.Context, meta func(bus.Partition) string) context.Context {
	if meta == nil {
		return ctx
	}
	return kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				m := meta(bus.Partition{Topic: t.Topic, Partition: t.Partitions[j].Partition})
				t.Partitions[j].Metadata = &m
			}
		}
		return nil
	})
}

// laneBroker answers the lane steps' questions ([bus.Broker]) for one
// client of plan p: h is the trunk's ledger, w a lane's start window.
type laneBroker struct {
	c  *Consumer
	cl *kgo.Client
	p  Plan
	h  *handovers
	w  *window
}

// Floor returns the lane floor of env on pt (see [bus.Skips.Floor]),
// reading the lane group's committed offsets; when the trunk skipped env's
// records (its lane was live) it first waits until the lane's group has no
// members (the lane left; bounded wait), so that the lane's last commit is
// in.
func (lb *laneBroker) Floor(ctx context.Context, env string, pt bus.Partition) (int64, error) {
	c, p, h := lb.c, lb.p, lb.h
	if at, known := h.Floor(env, pt); known {
		return at, nil
	}
	g := c.laneGroup(p, env)
	cl, err := kgo.NewClient(c.base...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
wait:
	for h.Has(env) { // a lane that skipped nothing for the trunk handled nothing: no need to wait
		ds, err := adm.DescribeGroups(wctx, g)
		if err != nil {
			break // read the offsets as they are
		}
		if d, ok := ds[g]; !ok || d.Err != nil || len(d.Members) == 0 {
			break
		}
		t := time.NewTimer(c.s.c.poll)
		select {
		case <-wctx.Done():
			t.Stop()
			break wait // the lane did not leave in time: read the offsets as they are
		case <-t.C:
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(fctx, g)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		return 0, fmt.Errorf("slkafka: read the floor of lane group %q: %w", g, err)
	}
	m := map[bus.Partition]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 && bus.IsFloor(o.Metadata) {
			m[bus.Partition{Topic: o.Topic, Partition: o.Partition}] = o.At
		}
	})
	h.SetFloor(env, m)
	at, _ := h.Floor(env, pt)
	return at, nil
}

// laneGroup is the group of env's lane instance for the trunk's plan p
// (see [bus.Rules.LaneName]: "<group>-<env>", and its shadow name for the
// shadow plan).
func (c *Consumer) laneGroup(p Plan, env string) string {
	return c.s.c.groups.LaneGroup(c.group, env, p)
}

// checkHandovers starts the hand-over of every env whose lane left (the
// trunk takes its records again), one at a time per env. A hand-over
// that fails calls fail; one that stops early (the lane came back, the
// kill switch is off) leaves its spans for the next check.
func (c *Consumer) checkHandovers(ctx context.Context, p Plan, h *handovers, fail func(error)) {
	due := h.Due(func(env string) bool { return c.s.r.Takes(c.group, propagation.Mark{Env: env}) })
	for env, b := range due {
		h.wg.Go(func() {
			err := c.handOver(ctx, p, env, b)
			h.Done(env, b)
			if err != nil && ctx.Err() == nil {
				fail(err)
			}
		})
	}
}

// handOver takes env's backlog b (see the file comment); what it did not
// finish stays in b.
func (c *Consumer) handOver(ctx context.Context, p Plan, env string, b bus.Backlog) error {
	g := c.laneGroup(p, env)
	if err := c.trimCommitted(ctx, g, b); err != nil || len(b) == 0 {
		return err
	}
	cl, err := kgo.NewClient(append(slices.Clone(c.base),
		kgo.ConsumerGroup(g),
		kgo.ConsumeTopics(p.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return fmt.Errorf("slkafka: hand-over of %q: %w", g, err)
	}
	defer cl.CloseAllowingRebalance()
	for len(b) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*c.s.c.poll)
		fs := cl.PollRecords(pctx, 1000)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		stop, err := c.handOverPoll(ctx, cl, g, env, fs, b)
		cl.AllowRebalance()
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// handOverPoll handles one poll of the hand-over: env's records inside
// b's spans are handled, everything else below a partition's end is passed
// over, and all of it is committed in the lane's group. stop: env's lane
// is live again or the kill switch holds a record back (the rest stays
// in b).
func (c *Consumer) handOverPoll(ctx context.Context, cl *kgo.Client, g, env string, fs kgo.Fetches, b bus.Backlog) (stop bool, err error) {
	var done []*kgo.Record
	handled := 0
	for it := fs.RecordIter(); !it.Done(); {
		r := it.Next()
		k := part(r)
		end := b.End(k)
		if end == 0 {
			continue
		}
		if r.Offset >= end {
			delete(b, k) // the lane had committed past the spans
			continue
		}
		d := c.s.r.Consume(c.group, r.Topic, ptr(decode(r)))
		if d.Mark.Env == env && b.Owns(k, r.Offset) {
			if d.Action == bus.Skip || d.Action == bus.Wait {
				stop = true
				break
			}
			if _, err = c.handle(ctx, nil, r, d); err != nil { // marked work (its env's backlog)
				break
			}
			handled++
		}
		done = append(done, r)
		if r.Offset+1 >= end {
			delete(b, k)
		}
	}
	if len(done) > 0 {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		// The lane's start window stays open (see reopenWindow): when the
		// lane comes back it passes over what the trunk takes meanwhile.
		cerr := cl.CommitRecords(commitCtx(cctx, func(bus.Partition) string { return bus.ReopenMetadata }), done...)
		ccancel()
		if cerr != nil && err == nil {
			c.s.obs.Uncommitted(handled, 0)
			err = fmt.Errorf("slkafka: hand-over of %q: commit: %w", g, cerr)
		}
	}
	c.s.obs.HandedOver(handled)
	return stop, err
}

// trimCommitted drops from b the partitions the lane's group g committed
// past.
func (c *Consumer) trimCommitted(ctx context.Context, g string, b bus.Backlog) error {
	cl, err := kgo.NewClient(c.base...)
	if err != nil {
		return err
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	committed, err := kadm.NewClient(cl).FetchOffsets(fctx, g)
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = nil, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("slkafka: hand-over: fetch offsets of %q: %w", g, err)
	}
	b.Trim(func(p bus.Partition) (int64, bool) {
		o, ok := committed.Lookup(p.Topic, p.Partition)
		return o.At, ok && o.Err == nil
	})
	return nil
}
