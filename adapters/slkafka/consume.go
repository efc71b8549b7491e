package slkafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// decode feeds the mark headers of r to a decoder.
func decode(r *kgo.Record) bus.Decoder {
	var d bus.Decoder
	for _, h := range r.Headers {
		if f := bus.FieldOf(h.Key); f != bus.NoField {
			d.Add(f, string(h.Value), true)
		}
	}
	return d
}

// Mark returns the mark of a consumed record: the run and env headers
// (names in any letter case; see [bus.Decoder] for the rule). A record read
// from a shadow topic without a run header gets the fallback run id (see
// [WithFallbackRun]): the topic alone makes it load-test traffic. A
// malformed or conflicting mark header ([shadow.ErrUnsupported]) and a run
// mark on a production topic (an anomaly, [shadow.ErrBlocked]) are a
// [*shadow.Error], and the record must not be handled.
func (s *Shadow) Mark(r *kgo.Record) (propagation.Mark, error) {
	return s.r.MarkOf(r.Topic, ptr(decode(r)))
}

// Context returns parent carrying the mark of r (see [Shadow.Mark]). It
// always sets the mark, so an unmarked record is handled as production even
// when parent carried a mark.
func (s *Shadow) Context(parent context.Context, r *kgo.Record) (context.Context, error) {
	m, err := s.Mark(r)
	if err != nil {
		return parent, err
	}
	return propagation.With(parent, m), nil
}

// Takes reports whether a consumer of this Shadow's environment
// ([WithEnv]) for the production group takes a record marked m: a lane
// consumer takes only its own env; the trunk takes every record except
// those whose env has a live lane consumer ([WithLanes]).
func (s *Shadow) Takes(group string, m propagation.Mark) bool { return s.r.Takes(group, m) }

// Plan is one consumer group a [Consumer] runs.
type Plan = bus.Plan

// Consumer runs a handler in a production (or lane) consumer group and,
// when configured, in the shadow group on the shadow topics beside it.
type Consumer struct {
	s     *Shadow
	group string
	h     Handler
	base  []kgo.Opt
	plans []Plan

	started     chan struct{}
	startedOnce sync.Once
}

// Started is closed once Run has fixed where every group starts: at once
// for the trunk; for a lane instance after the lane groups without
// committed offsets had the current end of their topics committed. Publish
// a lane as live in the lanes the trunk reads ([WithLanes]) only after
// Started: the trunk hands over from then on, and the lane takes every
// record produced after it.
func (c *Consumer) Started() <-chan struct{} { return c.started }

// Consumer prepares a consumer of topics in group (the production group
// name; a lane instance joins "<group>-<env>"). When group was named in
// [WithShadowGroups], a second consumer runs the same handler in the shadow
// group on the shadow twins of those topics that have one; otherwise no
// shadow topic is ever consumed. opts are the franz-go options of both
// clients (brokers, TLS, ...); the Consumer adds the group, the topics,
// kgo.DisableAutoCommit and kgo.BlockRebalanceOnPoll, and commits each
// record only after the handler (or the refusal callback) returned nil.
//
// Production topics that are already shadow names are refused: production
// consumers never read shadow topics.
func (s *Shadow) Consumer(group string, topics []string, h Handler, opts ...kgo.Opt) (*Consumer, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	plans, err := s.r.Plans(s.c.groups, group, topics)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Consumer{s: s, group: group, h: h, base: slices.Clone(opts), started: make(chan struct{}), plans: plans}, nil
}

// Plans returns the consumer groups Run joins.
func (c *Consumer) Plans() []Plan { return slices.Clone(c.plans) }

// Run consumes until ctx is done (then it returns nil) or a handler, a
// refusal callback or a commit fails on every try (then every group is
// left and the first error is returned; the failed record is not committed and is
// delivered again to the next consumer of the group).
func (c *Consumer) Run(ctx context.Context) error {
	runs, ctx := bus.NewRuns(ctx)
	defer runs.Wait() // on the early returns
	if c.s.r.Env() != "" {
		for _, p := range c.plans {
			if err := pinStart(ctx, c.base, p.Group, p.Topics); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("slkafka: group %q: fix the lane's start: %w", p.Group, err)
			}
		}
	}
	c.startedOnce.Do(func() { close(c.started) })
	for _, p := range c.plans {
		runs.Go(func() error { return c.run(ctx, p) })
	}
	return runs.Wait()
}

// run runs one plan's group. A trunk consumer hands the backlog of a lane
// that left over to itself (handover.go); a lane instance whose env
// leaves the lanes leaves its group (its committed offsets are the
// hand-over point) and joins it again once the env is back.
func (c *Consumer) run(ctx context.Context, p Plan) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var h *handovers
	if c.s.r.Env() == "" {
		h = newHandovers()
	}
	defer func() {
		cancel(nil)
		if h != nil {
			h.wg.Wait()
		}
	}()
	for {
		left, err := c.runClient(ctx, p, h, func(err error) { cancel(err) })
		if err == nil && ctx.Err() != nil {
			if cause := context.Cause(ctx); !errors.Is(cause, ctx.Err()) && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
				return cause // a hand-over failed
			}
		}
		if err != nil || !left {
			return err
		}
		if !c.waitReady(ctx, bus.Decision{}) {
			return nil
		}
	}
}

// runClient consumes p's group with one client until ctx is done, an
// error, or (left) this lane instance's env left the lanes.
func (c *Consumer) runClient(ctx context.Context, p Plan, h *handovers, fail func(error)) (left bool, err error) {
	opts := append(slices.Clone(c.base),
		kgo.ConsumerGroup(p.Group),
		kgo.ConsumeTopics(p.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	)
	if c.s.r.Env() != "" {
		// A new lane group starts at the end of its topics, never at the
		// beginning: the trunk handled what came before (issue 18 item 1).
		// A lane group that committed resumes where it left off.
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	}
	var (
		w    *window
		as   *assigned
		load func(bus.Partition, string)
	)
	switch {
	case h != nil:
		as, load = &assigned{}, func(p bus.Partition, meta string) { h.Load(p, meta) }
	case c.s.r.Env() != "" && c.s.r.Config().Lanes != nil:
		w = &window{}
		as, load = &assigned{}, w.Load
	}
	if as != nil {
		opts = append(opts, kgo.OnPartitionsAssigned(as.onAssigned))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return false, fmt.Errorf("slkafka: group %q: %w", p.Group, err)
	}
	defer cl.CloseAllowingRebalance()
	lanes := c.s.r.Config().Lanes != nil
	prod := propagation.With(ctx, propagation.Mark{}) // every production record's handler context, built once
	steps := &bus.LaneSteps{Counts: c.s.obs.Counters, Broker: &laneBroker{c: c, cl: cl, p: p, h: h, w: w}}
	if h != nil {
		steps.Skips = h.Skips
	}
	if w != nil {
		steps.Window = &w.StartWindow
	}
	for {
		pctx, pcancel := ctx, context.CancelFunc(func() {})
		if h != nil && lanes {
			// Notice a lane leaving, and load the spans of partitions
			// assigned meanwhile, without new records.
			pctx, pcancel = context.WithTimeout(ctx, 4*c.s.c.poll)
		}
		fs := cl.PollRecords(pctx, 1000)
		pcancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return false, nil
		}
		if as != nil {
			if err := loadCommitted(ctx, cl, p.Group, as, load); err != nil {
				cl.AllowRebalance()
				if ctx.Err() != nil {
					return false, nil
				}
				return false, err
			}
		}
		// Fetch errors are retried by franz-go; nothing is committed for
		// partitions that errored, so nothing is lost.
		if f := c.s.c.fetchErr; f != nil {
			fs.EachError(func(topic string, partition int32, err error) {
				if ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
					f(p.Group, topic, partition, err)
				}
			})
		}
		var (
			b      batch
			herr   error
			wait   *bus.Decision
			rewind map[string]map[int32]kgo.EpochOffset
		)
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if wait == nil {
				d, err := c.s.r.ConsumeRecord(ctx, c.group, part(r), r.Offset, ptr(decode(r)), steps)
				if herr = err; herr != nil {
					break
				}
				if d.Action == bus.Wait {
					w := d // a copy: taking d's address would move every record's decision to the heap
					wait = &w
				} else {
					refused, err := c.handle(ctx, prod, r, d)
					if herr = err; herr != nil {
						break
					}
					if refused {
						d.Action = bus.Refuse
					}
					b.add(r, d.Action)
					if refused {
						// A refusal is committed at once (retrying a
						// rejected commit), so that it reaches the
						// callback once even when a later commit fails.
						if herr = c.commit(ctx, cl, p.Group, c.metaOf(h, w), &b, 3); herr != nil {
							break
						}
					}
					continue
				}
			}
			// From the first record that must wait on, nothing of this
			// poll is handled: each partition is rewound to its first
			// record not handled.
			if rewind == nil {
				rewind = map[string]map[int32]kgo.EpochOffset{}
			}
			if rewind[r.Topic] == nil {
				rewind[r.Topic] = map[int32]kgo.EpochOffset{}
			}
			if _, ok := rewind[r.Topic][r.Partition]; !ok {
				rewind[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
			}
		}
		// What was handled before a handler failed is committed too.
		if err := c.commit(ctx, cl, p.Group, c.metaOf(h, w), &b, 1); err != nil && herr == nil {
			cl.AllowRebalance()
			return false, err
		}
		if h != nil && h.Tracking() {
			c.checkHandovers(ctx, p, h, fail)
		}
		if wait != nil && herr == nil && c.s.r.Env() != "" && !c.s.r.Live(c.group) {
			// This lane left: leave the group (the deferred close), so that
			// the trunk takes over its backlog from the committed offsets.
			// The start window is opened again on every partition: the
			// trunk takes the env's records while the lane is away, and
			// the lane passes over those when it comes back.
			if w != nil {
				reopenWindow(ctx, cl)
			}
			cl.AllowRebalance()
			return true, nil
		}
		if wait != nil && herr == nil {
			// Hand back what was not committed and wait, holding nothing:
			// the topics are paused, the partitions rewound, and
			// rebalances are allowed meanwhile.
			cl.PauseFetchTopics(p.Topics...)
			cl.SetOffsets(rewind)
			cl.AllowRebalance()
			if !c.waitReady(ctx, *wait) {
				return false, nil
			}
			cl.ResumeFetchTopics(p.Topics...)
			continue
		}
		cl.AllowRebalance()
		if herr != nil {
			if ctx.Err() != nil && errors.Is(herr, context.Cause(ctx)) {
				return false, nil
			}
			return false, herr
		}
	}
}

// batch is the records of a poll decided and not committed yet.
type batch struct {
	done             []*kgo.Record
	handled, refused int
}

func (b *batch) add(r *kgo.Record, a bus.Action) {
	b.done = append(b.done, r)
	switch a {
	case bus.Handle:
		b.handled++
	case bus.Refuse:
		b.refused++
	}
}

// brokerAttempts bounds the tries of a broker call (a commit, a read of
// the committed offsets) that fails for a transient reason (a retriable
// Kafka error, a broken or refused connection, a timeout): with retry's
// doubling backoff from 100ms they span over 3s, longer than a group
// coordinator is usually unreachable (a broker restart, a proxy dropping
// its connections). franz-go itself does not retry a refused dial.
const brokerAttempts = 6

// retry runs op until it succeeds, fails for good (any failure after
// anyErr tries, a transient one after brokerAttempts) or ctx is done
// (then it returns op's last error), with a doubling backoff from 100ms
// that ctx cuts short for one last try.
func retry(ctx context.Context, anyErr int, op func() error) error {
	wait := 100 * time.Millisecond
	for n := 1; ; n++ {
		err := op()
		if err == nil || n >= brokerAttempts || n >= anyErr && !transient(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait *= 2
	}
}

// commit commits b's records (with the hand-over spans in the metadata,
// for the trunk) and empties b, trying again as retry does (a rejected
// commit up to anyErr times). A commit that failed on every attempt is
// counted: its handled and refused records come again to the next
// consumer of the group (the documented at-least-once duplicates).
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, group string, meta func(bus.Partition) string, b *batch, anyErr int) error {
	if len(b.done) == 0 {
		return nil
	}
	err := retry(ctx, anyErr, func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return cl.CommitRecords(commitCtx(cctx, meta), b.done...)
	})
	if err != nil {
		c.s.obs.Uncommitted(b.handled, b.refused)
		*b = batch{}
		return fmt.Errorf("slkafka: group %q: commit: %w", group, err)
	}
	*b = batch{}
	return nil
}

// transient reports whether a failed commit may succeed when tried again
// soon: a Kafka error the protocol marks retriable, a network failure
// (refused, reset or closed connection, a dial that failed) or a timeout.
func transient(err error) bool {
	var ne net.Error
	return kerr.IsRetriable(err) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded)
}

func ptr[T any](v T) *T { return &v }

// waitReady waits until the rules let a consumer that waited on d take
// records again; false when ctx ended first.
func (c *Consumer) waitReady(ctx context.Context, d bus.Decision) bool {
	return c.s.r.WaitReady(ctx, c.group, d, c.s.c.poll)
}

// handle carries out decision d on r: the refusal callback for Refuse,
// the handler with the retries of [WithRetry] for Handle (a record that
// failed on every attempt goes to the refusal callback). refused reports
// that r reached the refusal callback and it returned nil.
//
// prod is ctx carrying the zero mark (nil: built here), the handler's
// context for production work: a loop builds it once rather than
// allocating a context per record.
func (c *Consumer) handle(ctx, prod context.Context, r *kgo.Record, d bus.Decision) (refused bool, err error) {
	switch d.Action {
	case bus.Skip:
		return false, nil
	case bus.Refuse:
		if c.s.c.refused != nil {
			err = c.s.c.refused(propagation.With(ctx, propagation.Mark{}), r, d.Err)
		}
		return err == nil, err
	}
	mctx := prod
	if !d.Mark.IsZero() || mctx == nil {
		mctx = propagation.With(ctx, d.Mark)
	}
	if d.Mark.Run != "" { // evidence counts marked work only: skip the target for production
		c.s.obs.Entry(mctx, c.s.r.Production(r.Topic), c.group)
	}
	var exhausted bool
	if err = c.h(mctx, r); err != nil { // the retries (no closure on the path of a handled record)
		exhausted, err = c.s.c.retry.After(ctx, err, func() error { return c.h(mctx, r) })
	}
	if bus.Final(ctx, exhausted, err) {
		c.s.obs.HandlerFailed(mctx)
	}
	if !exhausted {
		return false, err
	}
	err = fmt.Errorf("%w (%d attempts): %w", ErrRetriesExhausted, c.s.c.retry.Attempts, err)
	if c.s.c.refused != nil {
		err = c.s.c.refused(mctx, r, err)
		return err == nil, err
	}
	return false, err
}
