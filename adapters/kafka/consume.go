package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// headerMark reads the mark headers. A header present more than once with
// different values, an empty value or a value that is not a valid id is an
// error naming the header: the record must not be handled as production.
func headerMark(hs []kgo.RecordHeader) (m propagation.Mark, bad string) {
	var seenRun, seenEnv bool
	for _, h := range hs {
		switch {
		case isHeader(h.Key, HeaderRun):
			v := string(h.Value)
			if !propagation.ValidID(v) || (seenRun && v != m.Run) {
				return propagation.Mark{}, HeaderRun
			}
			m.Run, seenRun = v, true
		case isHeader(h.Key, HeaderEnv):
			v := string(h.Value)
			if !propagation.ValidID(v) || (seenEnv && v != m.Env) {
				return propagation.Mark{}, HeaderEnv
			}
			m.Env, seenEnv = v, true
		}
	}
	return m, ""
}

// Mark returns the mark of a consumed record: the run and env headers,
// validated with [propagation.ValidID]. A record read from a shadow topic
// without a run header gets the fallback run id (see [WithFallbackRun]): the
// topic alone makes it load-test traffic. A malformed or conflicting mark
// header is a [*shadow.Error] wrapping [shadow.ErrUnsupported], and the
// record must not be handled.
func (s *Shadow) Mark(r *kgo.Record) (propagation.Mark, error) {
	m, bad := headerMark(r.Headers)
	if bad != "" {
		return propagation.Mark{}, shadow.Refuse(Store, r.Topic, "malformed or conflicting "+bad+" header", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if m.Run == "" && s.c.topicNaming.IsShadow(r.Topic) {
		m.Run = s.c.fallbackRun
	}
	return m, nil
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
func (s *Shadow) Takes(group string, m propagation.Mark) bool {
	if s.c.env != "" {
		return m.Env == s.c.env
	}
	return m.Env == "" || s.c.lanes == nil || !s.c.lanes.HasLane(group, m.Env)
}

// Plan is one consumer group a [Consumer] runs.
type Plan struct {
	Group  string   // the consumer group joined
	Topics []string // the topics consumed
	Shadow bool     // shadow group on shadow topics
}

// Consumer runs a handler in a production (or lane) consumer group and,
// when configured, in the shadow group on the shadow topics beside it.
type Consumer struct {
	s     *Shadow
	group string
	h     Handler
	base  []kgo.Opt
	plans []Plan
}

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
	if group == "" || s.c.groupNaming.IsShadow(group) {
		return nil, fmt.Errorf("%w: consumer group %q is empty or a shadow name", ErrConfig, group)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: no topics for group %q", ErrConfig, group)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	var shadows []string
	for _, t := range topics {
		if t == "" || s.c.topicNaming.IsShadow(t) {
			return nil, fmt.Errorf("%w: topic %q is empty or a shadow topic; production consumers never read shadow topics", ErrConfig, t)
		}
		if st, ok := s.ShadowTopic(t); ok {
			shadows = append(shadows, st)
		}
	}
	g := group
	if s.c.env != "" {
		g = group + "-" + s.c.env
	}
	c := &Consumer{s: s, group: group, h: h, base: slices.Clone(opts)}
	c.plans = append(c.plans, Plan{Group: g, Topics: slices.Clone(topics)})
	if _, ok := s.c.groups[group]; ok && len(shadows) > 0 {
		c.plans = append(c.plans, Plan{Group: s.c.groupNaming.Shadow(g), Topics: shadows, Shadow: true})
	}
	return c, nil
}

// Plans returns the consumer groups Run joins.
func (c *Consumer) Plans() []Plan { return slices.Clone(c.plans) }

// Run consumes until ctx is done (then it returns nil) or a handler, a
// refusal callback or a commit fails (then every group is left and the
// first error is returned; the failed record is not committed and is
// delivered again to the next consumer of the group).
func (c *Consumer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, p := range c.plans {
		wg.Go(func() {
			if err := c.run(ctx, p); err != nil {
				once.Do(func() { first = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	return first
}

func (c *Consumer) run(ctx context.Context, p Plan) error {
	opts := append(slices.Clone(c.base),
		kgo.ConsumerGroup(p.Group),
		kgo.ConsumeTopics(p.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("shadowlane/kafka: group %q: %w", p.Group, err)
	}
	defer cl.CloseAllowingRebalance()
	for {
		fs := cl.PollRecords(ctx, 1000)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		// Fetch errors are retried by franz-go; nothing is committed for
		// partitions that errored, so nothing is lost.
		if f := c.s.c.fetchErr; f != nil {
			fs.EachError(func(topic string, partition int32, err error) {
				if ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
					f(p.Group, topic, partition, err)
				}
			})
		}
		var (
			done []*kgo.Record
			herr error
		)
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if herr = c.handle(ctx, p, r); herr != nil {
				break
			}
			done = append(done, r)
		}
		if len(done) > 0 {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := cl.CommitRecords(cctx, done...)
			ccancel()
			if err != nil {
				cl.AllowRebalance()
				return fmt.Errorf("shadowlane/kafka: group %q: commit: %w", p.Group, err)
			}
		}
		cl.AllowRebalance()
		if herr != nil {
			if ctx.Err() != nil && errors.Is(herr, context.Cause(ctx)) {
				return nil
			}
			return herr
		}
	}
}

func (c *Consumer) handle(ctx context.Context, p Plan, r *kgo.Record) error {
	m, err := c.s.Mark(r)
	if err != nil {
		shadow.Record(Store, c.s.ProductionTopic(r.Topic), shadow.Block)
		if c.s.c.refused != nil {
			return c.s.c.refused(propagation.With(ctx, propagation.Mark{}), r, err)
		}
		return nil
	}
	if !c.s.Takes(c.group, m) {
		return nil
	}
	mctx := propagation.With(ctx, m)
	err = c.h(mctx, r)
	if err == nil || c.s.c.attempts <= 1 {
		return err
	}
	wait := c.s.c.backoff
	for n := 2; n <= c.s.c.attempts; n++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return context.Cause(ctx)
			case <-t.C:
			}
			if wait *= 2; c.s.c.maxBackoff > 0 && wait > c.s.c.maxBackoff {
				wait = c.s.c.maxBackoff
			}
		}
		if err = c.h(mctx, r); err == nil {
			return nil
		}
	}
	err = fmt.Errorf("%w (%d attempts): %w", ErrRetriesExhausted, c.s.c.attempts, err)
	if c.s.c.refused != nil {
		return c.s.c.refused(mctx, r, err)
	}
	return err
}
