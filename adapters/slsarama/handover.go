package slsarama

// Hand-over of a removed lane's backlog to the trunk (issue 16 item 4),
// the sarama glue of the rules of package shadow/bus (handover.go there):
// the trunk notes the records it skips for a live lane in a bus.Skips
// ledger whose spans travel in the metadata of its marks (so commits
// carry them); a lane whose env leaves the lanes leaves its group; the
// trunk then joins the lane's group and handles the env's records inside
// the spans it skipped from the lane's committed offsets, and passes over
// the lane's records below the lane's floor when it takes the env again.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// trunkPlan is the trunk side of one plan of a [Consumer] run with lanes.
type trunkPlan struct {
	c     *Consumer
	p     Plan
	cl    sarama.Client
	skips *bus.Skips
	wg    sync.WaitGroup
}

func partOf(msg *sarama.ConsumerMessage) bus.Partition {
	return bus.Partition{Topic: msg.Topic, Partition: msg.Partition}
}

// laneBroker answers the lane steps' questions ([bus.Broker]) for a
// Consumer's plan: the trunk's floors, a lane's start window.
type laneBroker struct {
	tp  *trunkPlan
	win *laneWindow
}

func (lb laneBroker) Floor(ctx context.Context, env string, p bus.Partition) (int64, error) {
	return lb.tp.floor(ctx, env, p)
}

func (lb laneBroker) TrunkSkipped(ctx context.Context, env string, p bus.Partition, off int64) (bool, error) {
	return lb.win.trunkSkipped(ctx, env, p, off)
}

// laneGroup is the group of env's lane instance for the trunk's plan.
func (tp *trunkPlan) laneGroup(env string) string {
	return tp.c.s.c.groups.LaneGroup(tp.c.group, env, tp.p)
}

// committed returns group's committed offsets (and metadata) of the
// plan's topics.
func (tp *trunkPlan) committed(group string) (*sarama.OffsetFetchResponse, error) {
	want := map[string][]int32{}
	for _, t := range tp.p.Topics {
		ps, err := tp.cl.Partitions(t)
		if err != nil {
			return nil, err
		}
		want[t] = ps
	}
	adm, err := sarama.NewClusterAdminFromClient(tp.cl)
	if err != nil {
		return nil, err
	}
	// adm shares tp.cl: closing it would close the client.
	offs, err := adm.ListConsumerGroupOffsets(group, want)
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return nil, nil
	}
	return offs, err
}

// load reads the committed metadata of the claimed partitions and loads
// their spans (a partition taken over from another trunk instance, or a
// restart).
func (tp *trunkPlan) load(claims map[string][]int32) error {
	offs, err := tp.committed(tp.p.Group)
	if err != nil || offs == nil {
		return err
	}
	for t, ps := range claims {
		for _, p := range ps {
			if b := offs.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError && b.Metadata != "" {
				tp.skips.Load(bus.Partition{Topic: t, Partition: p}, b.Metadata)
			}
		}
	}
	return nil
}

// floor returns the lane floor of env on p (see [bus.Skips.Floor]),
// reading the lane group's committed offsets; when the trunk skipped
// env's messages (its lane was live) it first waits until the lane's group
// has no members (the lane left; bounded wait), so that the lane's last
// commit is in.
func (tp *trunkPlan) floor(ctx context.Context, env string, p bus.Partition) (int64, error) {
	if at, known := tp.skips.Floor(env, p); known {
		return at, nil
	}
	g := tp.laneGroup(env)
	adm, err := sarama.NewClusterAdminFromClient(tp.cl)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for tp.skips.Has(env) && time.Now().Before(deadline) && ctx.Err() == nil {
		ds, err := adm.DescribeConsumerGroups([]string{g})
		if err != nil || len(ds) != 1 || len(ds[0].Members) == 0 {
			break
		}
		time.Sleep(tp.c.s.c.poll)
	}
	offs, err := tp.committed(g)
	if err != nil {
		return 0, fmt.Errorf("slsarama: read the floor of lane group %q: %w", g, err)
	}
	m := map[bus.Partition]int64{}
	if offs != nil {
		for t, ps := range offs.Blocks {
			for part, b := range ps {
				if b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 && bus.IsFloor(b.Metadata) {
					m[bus.Partition{Topic: t, Partition: part}] = b.Offset
				}
			}
		}
	}
	tp.skips.SetFloor(env, m)
	at, _ := tp.skips.Floor(env, p)
	return at, nil
}

// watch starts the hand-over of every env whose lane left, until ctx
// ends; a hand-over that fails calls fail.
func (tp *trunkPlan) watch(ctx context.Context, fail func(error)) {
	t := time.NewTicker(4 * tp.c.s.c.poll)
	defer t.Stop()
	defer tp.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !tp.skips.Tracking() {
			continue
		}
		due := tp.skips.Due(func(env string) bool { return tp.c.s.r.Takes(tp.c.group, propagation.Mark{Env: env}) })
		for env, b := range due {
			tp.wg.Go(func() {
				sb := &syncBacklog{b: b}
				err := tp.handOver(ctx, env, sb)
				tp.skips.Done(env, sb.b)
				if err != nil && ctx.Err() == nil {
					fail(err)
				}
			})
		}
	}
}

type syncBacklog struct {
	mu sync.Mutex
	b  bus.Backlog
}

// handOver takes env's backlog (see the file comment); what it did not
// finish stays in sb.
func (tp *trunkPlan) handOver(ctx context.Context, env string, sb *syncBacklog) error {
	g := tp.laneGroup(env)
	offs, err := tp.committed(g)
	if err != nil {
		return fmt.Errorf("slsarama: hand-over: fetch offsets of %q: %w", g, err)
	}
	sb.b.Trim(func(p bus.Partition) (int64, bool) {
		if offs == nil {
			return 0, false
		}
		if b := offs.GetBlock(p.Topic, p.Partition); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 {
			return b.Offset, true
		}
		return 0, false
	})
	if len(sb.b) == 0 {
		return nil
	}
	cfg := *tp.c.cfg
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup(tp.c.addrs, g, &cfg)
	if err != nil {
		return fmt.Errorf("slsarama: hand-over of %q: %w", g, err)
	}
	defer cg.Close()
	if cfg.Consumer.Return.Errors {
		go func() {
			for range cg.Errors() {
			}
		}()
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hh := &handOverHandler{g: groupHandler{s: tp.c.s, group: tp.c.group, h: tp.c.h}, env: env, sb: sb, done: cancel}
	for hctx.Err() == nil {
		if err := cg.Consume(hctx, tp.p.Topics, hh); err != nil && hctx.Err() == nil {
			return fmt.Errorf("slsarama: hand-over of %q: %w", g, err)
		}
		if hh.failed != nil {
			return hh.failed
		}
	}
	return nil
}

// handOverHandler handles env's records inside the backlog's spans in the
// lane's group, marks everything below each partition's end, and ends the
// hand-over once every partition is done (or env's lane is back).
type handOverHandler struct {
	g      groupHandler
	env    string
	sb     *syncBacklog
	done   context.CancelFunc
	mu     sync.Mutex
	failed error
}

func (hh *handOverHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (hh *handOverHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (hh *handOverHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := bus.Partition{Topic: claim.Topic(), Partition: claim.Partition()}
	end := func() int64 {
		hh.sb.mu.Lock()
		defer hh.sb.mu.Unlock()
		return hh.sb.b.End(p)
	}
	drop := func() {
		hh.sb.mu.Lock()
		delete(hh.sb.b, p)
		empty := len(hh.sb.b) == 0
		hh.sb.mu.Unlock()
		sess.Commit()
		if empty {
			hh.done()
		}
	}
	if end() == 0 {
		return nil
	}
	return eachMessage(sess, claim, func(msg *sarama.ConsumerMessage) (bool, error) {
		e := end()
		if msg.Offset >= e {
			drop() // the lane had committed past the spans
			return true, nil
		}
		d := decode(msg.Headers)
		dec := hh.g.s.r.Consume(hh.g.group, msg.Topic, &d)
		hh.sb.mu.Lock()
		owns := hh.sb.b.Owns(p, msg.Offset)
		hh.sb.mu.Unlock()
		if dec.Mark.Env == hh.env && owns {
			if dec.Action == bus.Skip || dec.Action == bus.Wait {
				hh.done() // the lane is back, or the kill switch holds it
				return true, nil
			}
			if _, err := hh.g.handle(sess.Context(), nil, msg, dec.Mark); err != nil {
				hh.mu.Lock()
				hh.failed = err
				hh.mu.Unlock()
				hh.done()
				return true, err
			}
			hh.g.s.obs.HandedOver(1)
		}
		// The lane's start window stays open: when the lane comes
		// back it passes over what the trunk takes meanwhile.
		sess.MarkMessage(msg, bus.ReopenMetadata)
		if msg.Offset+1 >= e {
			drop()
			return true, nil
		}
		return false, nil
	})
}

// commitRefusal commits a refused message at once, in the session's
// generation, with the spans of its partition, trying up to 3 times: a
// refusal then reaches the callback once even when a later commit of the
// session fails. A commit that failed on every attempt is counted (the
// next consumer of the group refuses it again).
func (tp *trunkPlan) commitRefusal(sess sarama.ConsumerGroupSession, group string, msg *sarama.ConsumerMessage, meta string) {
	wait := 100 * time.Millisecond
	for n := 1; n <= 3; n++ {
		if tp.commitOnce(sess, group, msg, meta) == nil {
			return
		}
		if n < 3 {
			time.Sleep(wait)
			wait *= 2
		}
	}
	tp.c.s.obs.Uncommitted(0, 1)
}

func (tp *trunkPlan) commitOnce(sess sarama.ConsumerGroupSession, group string, msg *sarama.ConsumerMessage, meta string) error {
	req := sarama.NewOffsetCommitRequest(tp.c.cfg, group)
	req.ConsumerGroupGeneration = sess.GenerationID()
	req.ConsumerID = sess.MemberID()
	req.AddBlock(msg.Topic, msg.Partition, msg.Offset+1, 0, meta)
	coord, err := tp.cl.Coordinator(group)
	if err != nil {
		return err
	}
	resp, err := coord.CommitOffset(req)
	if err != nil {
		_ = tp.cl.RefreshCoordinator(group)
		return err
	}
	if kerr := resp.Errors[msg.Topic][msg.Partition]; kerr != sarama.ErrNoError {
		return kerr
	}
	return nil
}

// handledLog notes the offsets a Consumer's group handled in its current
// session (as spans), so that what the session could not commit is
// counted when it ends: sarama commits asynchronously, and a handled
// message whose commit failed comes again to the next consumer (the
// documented at-least-once duplicate).
type handledLog struct {
	mu sync.Mutex
	m  map[bus.Partition][]bus.Span
}

// maxLogSpans bounds the spans kept per partition; older ones were
// committed by sarama's periodic commits long before.
const maxLogSpans = 4096

func (l *handledLog) add(p bus.Partition, off int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[bus.Partition][]bus.Span{}
	}
	list := l.m[p]
	if n := len(list); n > 0 && list[n-1].To == off {
		list[n-1].To = off + 1
		return
	}
	if len(list) >= maxLogSpans {
		list = list[1:]
	}
	l.m[p] = append(list, bus.Span{From: off, To: off + 1})
}

// settle counts the logged offsets at or above each partition's committed
// offset and empties the log.
func (l *handledLog) settle(committed func(bus.Partition) int64) int {
	l.mu.Lock()
	m := l.m
	l.m = nil
	l.mu.Unlock()
	n := 0
	for p, list := range m {
		at := committed(p)
		for _, sp := range list {
			if sp.To > at {
				n += int(sp.To - max(sp.From, at))
			}
		}
	}
	return n
}

// settleSession counts what the session of group that just ended handled
// and could not commit (read back from the broker).
func (c *Consumer) settleSession(p Plan, log *handledLog) {
	cl, err := sarama.NewClient(c.addrs, c.cfg)
	if err != nil {
		return
	}
	defer cl.Close()
	tp := &trunkPlan{c: c, p: p, cl: cl}
	offs, err := tp.committed(p.Group)
	if err != nil {
		return
	}
	n := log.settle(func(part bus.Partition) int64 {
		if offs != nil {
			if b := offs.GetBlock(part.Topic, part.Partition); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 {
				return b.Offset
			}
		}
		return 0
	})
	c.s.obs.Uncommitted(n, 0)
}
