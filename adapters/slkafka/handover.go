package slkafka

// Hand-over of a removed lane's backlog to the trunk (issue 16 item 4).
//
// While env E has a live lane for a consumer group G, the trunk consumer
// skips E's records (and commits past them in G); the lane instance takes
// them in its own group "G-E". A lane that falls behind has a backlog: E's
// records the trunk skipped and the lane has not committed. When E leaves
// the lanes, the lane instance stops at once and leaves its group; its
// committed offsets are the hand-over point. The trunk consumer that
// skipped the records notices (a Handle of an E record, or its poll
// timing out while it has skipped E records) and hands the backlog over
// to itself: it joins the lane's group "G-E" as a member (so it and a
// returning lane never hold one partition at once, and its commits are
// fenced by the group's generation), reads every partition from the
// lane's committed offset, handles E's records below the end of the range
// it skipped, commits them in the lane's group, and leaves. Every record
// of E is so handled once, by the lane or by the trunk: the lane handled
// and committed what lies below its committed offset, the trunk hands
// over from there up to what it skipped, and takes the rest itself.

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

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// skipped is a range of offsets of one partition in which the trunk
// skipped an env's records: from the first skipped to past the last.
type skipped struct{ from, to int64 }

// partitionKey names a topic partition.
type partitionKey struct {
	topic     string
	partition int32
}

// handovers is the trunk side of the hand-over for one plan: the ranges
// skipped per env while its lane was live, the ranges whose lane left
// (pending), and the hand-overs running.
type handovers struct {
	mu      sync.Mutex
	live    map[string]map[partitionKey]skipped // env -> ranges skipped while its lane was live
	pending map[string]map[partitionKey]skipped // env -> ranges to hand over (its lane left)
	running map[string]bool
	wg      sync.WaitGroup
}

func newHandovers() *handovers {
	return &handovers{live: map[string]map[partitionKey]skipped{}, pending: map[string]map[partitionKey]skipped{}, running: map[string]bool{}}
}

// skip records that the trunk skipped r because env has a live lane.
func (h *handovers) skip(env string, r *kgo.Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.live[env]
	if m == nil {
		m = map[partitionKey]skipped{}
		h.live[env] = m
	}
	k := partitionKey{r.Topic, r.Partition}
	s, ok := m[k]
	if !ok {
		s.from = r.Offset
	}
	s.to = r.Offset + 1
	m[k] = s
}

// left moves env's skipped ranges to the pending hand-overs: its lane is
// gone (the trunk takes env's records again).
func (h *handovers) left(env string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leftLocked(env)
}

func (h *handovers) leftLocked(env string) {
	m := h.live[env]
	if len(m) == 0 {
		return
	}
	delete(h.live, env)
	p := h.pending[env]
	if p == nil {
		p = map[partitionKey]skipped{}
		h.pending[env] = p
	}
	for k, s := range m {
		if q, ok := p[k]; ok {
			s.from = min(s.from, q.from)
			s.to = max(s.to, q.to)
		}
		p[k] = s
	}
}

// tracking reports whether the trunk skipped records whose lane may
// leave, or holds hand-overs not yet done: the trunk then polls with a
// timeout, so that it notices a lane leaving without new records.
func (h *handovers) tracking() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.live) > 0 || len(h.pending) > 0
}

// laneGroup is the group of env's lane instance for the trunk's plan p
// (see [bus.Rules.LaneName]: "<group>-<env>", and its shadow name for the
// shadow plan).
func (c *Consumer) laneGroup(p Plan, env string) string {
	g := c.group + "-" + env
	if p.Shadow {
		g = c.s.c.groupNaming.Shadow(g)
	}
	return g
}

// checkHandovers starts the hand-over of every env whose lane left (the
// trunk takes its records again), one at a time per env. A hand-over
// that fails calls fail; one that stops early (the lane came back, the
// kill switch is off) leaves its ranges pending for the next check.
func (c *Consumer) checkHandovers(ctx context.Context, p Plan, h *handovers, fail func(error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for env := range h.live {
		if c.s.r.Takes(c.group, propagation.Mark{Env: env}) {
			h.leftLocked(env)
		}
	}
	for env, rs := range h.pending {
		if h.running[env] || !c.s.r.Takes(c.group, propagation.Mark{Env: env}) {
			continue
		}
		delete(h.pending, env)
		h.running[env] = true
		h.wg.Go(func() {
			rest, err := c.handOver(ctx, p, env, rs)
			h.mu.Lock()
			delete(h.running, env)
			if len(rest) > 0 && ctx.Err() == nil {
				p := h.pending[env]
				if p == nil {
					h.pending[env] = rest
				} else {
					for k, s := range rest {
						p[k] = s
					}
				}
			}
			h.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				fail(err)
			}
		})
	}
}

// handOver takes env's backlog in the ranges rs (see the file comment) and
// returns the ranges not done when it stopped early.
func (c *Consumer) handOver(ctx context.Context, p Plan, env string, rs map[partitionKey]skipped) (map[partitionKey]skipped, error) {
	g := c.laneGroup(p, env)
	rest, err := c.notCommitted(ctx, g, rs)
	if err != nil || len(rest) == 0 {
		return rest, err
	}
	cl, err := kgo.NewClient(append(slices.Clone(c.base),
		kgo.ConsumerGroup(g),
		kgo.ConsumeTopics(p.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return rest, fmt.Errorf("shadowlane/kafka: hand-over of %q: %w", g, err)
	}
	defer cl.CloseAllowingRebalance()
	for len(rest) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*c.s.c.poll)
		fs := cl.PollRecords(pctx, 1000)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return rest, nil
		}
		stop, err := c.handOverPoll(ctx, cl, g, env, fs, rest)
		cl.AllowRebalance()
		if err != nil || stop {
			return rest, err
		}
	}
	return nil, nil
}

// handOverPoll handles one poll of the hand-over: env's records inside
// their range are handled, everything else below a range's end is passed
// over, and all of it is committed in the lane's group. stop: env's lane
// is live again or the kill switch holds a record back (the rest stays
// pending).
func (c *Consumer) handOverPoll(ctx context.Context, cl *kgo.Client, g, env string, fs kgo.Fetches, rest map[partitionKey]skipped) (stop bool, err error) {
	var done []*kgo.Record
	for it := fs.RecordIter(); !it.Done(); {
		r := it.Next()
		k := partitionKey{r.Topic, r.Partition}
		s, ok := rest[k]
		if !ok {
			continue
		}
		if r.Offset >= s.to {
			delete(rest, k) // the lane had committed past the range
			continue
		}
		d := c.s.r.Consume(c.group, r.Topic, ptr(decode(r)))
		if r.Offset >= s.from && d.Mark.Env == env {
			if d.Action == bus.Skip || d.Action == bus.Wait {
				stop = true
				break
			}
			if err = c.handle(ctx, r, d); err != nil {
				break
			}
		}
		done = append(done, r)
		if r.Offset+1 >= s.to {
			delete(rest, k)
		}
	}
	if len(done) > 0 {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cerr := cl.CommitRecords(cctx, done...)
		ccancel()
		if cerr != nil && err == nil {
			err = fmt.Errorf("shadowlane/kafka: hand-over of %q: commit: %w", g, cerr)
		}
	}
	return stop, err
}

// notCommitted returns the ranges of rs that the lane's group g has not
// committed past.
func (c *Consumer) notCommitted(ctx context.Context, g string, rs map[partitionKey]skipped) (map[partitionKey]skipped, error) {
	cl, err := kgo.NewClient(c.base...)
	if err != nil {
		return rs, err
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
			return rs, nil
		}
		return rs, fmt.Errorf("shadowlane/kafka: hand-over: fetch offsets of %q: %w", g, err)
	}
	rest := map[partitionKey]skipped{}
	for k, s := range rs {
		if o, ok := committed.Lookup(k.topic, k.partition); ok && o.Err == nil && o.At >= s.to {
			continue
		}
		rest[k] = s
	}
	return rest, nil
}
