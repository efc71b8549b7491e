package slsarama

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Plan is one consumer group a [Consumer] runs.
type Plan = bus.Plan

// Consumer runs a [MessageHandler] in a production (or lane) consumer group
// and, for groups named in [WithShadowGroups], in the shadow group on the
// shadow topics beside it, through [Shadow.GroupHandler].
type Consumer struct {
	s     *Shadow
	group string
	h     MessageHandler
	addrs []string
	cfg   *sarama.Config
	plans []Plan
}

// Consumer prepares a consumer of topics in group (the production group
// name; a lane instance joins "<group>-<env>", see [Shadow.Group]) on the
// brokers addrs with cfg (nil: sarama.NewConfig()). When group was named in
// [WithShadowGroups], a second consumer group runs the same handler in the
// shadow group ([Shadow.ShadowGroup]) on the shadow twins of those topics
// that have one; otherwise no shadow topic is ever consumed. Topics that
// are already shadow names are refused: production consumers never read
// shadow topics.
func (s *Shadow) Consumer(addrs []string, cfg *sarama.Config, group string, topics []string, h MessageHandler) (*Consumer, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no broker addresses", ErrConfig)
	}
	plans, err := s.r.Plans(s.c.groups, group, topics)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg == nil {
		cfg = sarama.NewConfig()
	}
	if s.r.Env() != "" {
		// A new lane group starts at the newest offset, never at the
		// beginning: the trunk handled what came before (issue 18 item 1).
		// Run commits that start before it joins (pinStart); a lane
		// group that committed resumes where it left off.
		lc := *cfg
		lc.Consumer.Offsets.Initial = sarama.OffsetNewest
		cfg = &lc
	}
	return &Consumer{s: s, group: group, h: h, addrs: slices.Clone(addrs), cfg: cfg, plans: plans}, nil
}

// Plans returns the consumer groups Run joins.
func (c *Consumer) Plans() []Plan {
	out := slices.Clone(c.plans)
	for i := range out {
		out[i].Topics = slices.Clone(out[i].Topics)
	}
	return out
}

// Run consumes until ctx is done (then it returns nil) or a handler, the
// refusal callback ([WithRefused]) or sarama's Consume fails: then every
// group is left and the first error is returned. A message whose handler
// failed is not marked, so it is delivered again to the next consumer of
// the group. With cfg.Consumer.Return.Errors set, sarama's error channel is
// drained (and its errors dropped: sarama retries them itself).
//
// A lane instance whose env leaves the lanes ([WithLanes]) stops taking
// messages at once, commits what it marked and leaves its group (handing
// back what it had not marked); it joins again once the env is back. The
// trunk hands the lane's backlog over to itself (see the package doc).
func (c *Consumer) Run(ctx context.Context) error {
	runs, ctx := bus.NewRuns(ctx)
	defer runs.Wait() // on the early returns
	fail := runs.Fail
	cl, err := sarama.NewClient(c.addrs, c.cfg)
	if err != nil {
		return fmt.Errorf("slsarama: client: %w", err)
	}
	defer cl.Close()
	lanes := c.s.r.Config().Lanes != nil
	for _, p := range c.plans {
		var (
			tp  *trunkPlan
			win *laneWindow
		)
		switch {
		case c.s.r.Env() == "":
			tp = &trunkPlan{c: c, p: p, cl: cl, skips: bus.NewSkips()}
			if lanes {
				runs.Go(func() error { tp.watch(ctx, fail); return nil })
			}
		case lanes:
			win = &laneWindow{c: c, p: p, cl: cl}
		}
		log := &handledLog{}
		steps := &bus.LaneSteps{Counts: c.s.obs.Counters, Broker: laneBroker{tp: tp, win: win}}
		if tp != nil {
			steps.Skips = tp.skips
		}
		if win != nil {
			steps.Window = &win.StartWindow
		}
		h := runHandler{ConsumerGroupHandler: groupHandler{s: c.s, group: c.group, h: c.h, tp: tp, win: win, log: log, steps: steps}, fail: fail}
		runs.Go(func() error {
			for rejoin := false; ctx.Err() == nil; rejoin = true {
				// A lane that left joins again once its env is back.
				if rejoin && c.s.r.Env() != "" && !c.s.wait(ctx, c.group, bus.Decision{}) {
					return nil
				}
				if err := c.join(ctx, p, h, log); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return runs.Wait()
}

// join consumes p's group until ctx is done, an error, or (for a lane
// instance) its env left the lanes: then the group is left.
func (c *Consumer) join(ctx context.Context, p Plan, h runHandler, log *handledLog) error {
	if c.s.r.Env() != "" {
		if err := pinStart(c.addrs, c.cfg, p.Group, p.Topics); err != nil {
			return fmt.Errorf("slsarama: group %q: fix the lane's start: %w", p.Group, err)
		}
	}
	cg, err := sarama.NewConsumerGroup(c.addrs, p.Group, c.cfg)
	if err != nil {
		return fmt.Errorf("slsarama: group %q: %w", p.Group, err)
	}
	defer cg.Close() // leaves the group
	if c.cfg.Consumer.Return.Errors {
		go func() {
			for range cg.Errors() {
			}
		}()
	}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	if c.s.r.Env() != "" {
		// Leave at once when the env leaves the lanes: the claims stop
		// (a message waiting for the lane is not marked), the session
		// commits what was marked, and Close leaves the group. A lane
		// started before it is listed joins (its start is fixed) and
		// waits in its claims until it is listed.
		go func() {
			t := time.NewTicker(c.s.c.poll)
			defer t.Stop()
			for listed := false; ; {
				live := c.s.r.Live(c.group)
				if !live && listed {
					scancel()
					return
				}
				listed = listed || live
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for sctx.Err() == nil {
		err := cg.Consume(sctx, p.Topics, h)
		// The session ended (and flushed its marks): count what it
		// handled and could not commit.
		c.settleSession(p, log)
		if sctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				err = fmt.Errorf("slsarama: group %q: %w", p.Group, err)
			}
			return err
		}
	}
	return nil
}

// runHandler stops the whole Consumer on the first error of a claim (sarama
// itself only logs it and keeps the session).
type runHandler struct {
	sarama.ConsumerGroupHandler
	fail func(error)
}

func (h runHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	err := h.ConsumerGroupHandler.ConsumeClaim(sess, claim)
	if err != nil && sess.Context().Err() == nil {
		h.fail(err)
	}
	return err
}

// pinStart fixes where a lane group starts: every partition of topics
// without a committed offset in group gets its current newest offset
// committed before the group is joined. Without it a lane group that
// restarts before it marked anything on a partition would start at the
// newest offset again and skip what came meanwhile (which the trunk
// skipped as the lane's). Groups that committed keep their offsets; a
// commit the broker refuses (the lane's group already has members, which
// fixed the start) leaves the group's own start (the newest offset).
func pinStart(addrs []string, cfg *sarama.Config, group string, topics []string) error {
	cl, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	want := map[string][]int32{}
	for _, topic := range topics {
		parts, err := cl.Partitions(topic)
		if err != nil {
			return err
		}
		want[topic] = parts
	}
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		return err
	}
	committed, err := adm.ListConsumerGroupOffsets(group, want)
	if err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
		return err
	}
	req := sarama.NewOffsetCommitRequest(cfg, group)
	pinned := false
	for topic, parts := range want {
		for _, part := range parts {
			if committed != nil {
				if b := committed.GetBlock(topic, part); b != nil && b.Offset >= 0 {
					continue
				}
			}
			end, err := cl.GetOffset(topic, part, sarama.OffsetNewest)
			if err != nil {
				return err
			}
			req.AddBlock(topic, part, end, 0, bus.StartMetadata)
			pinned = true
		}
	}
	if !pinned {
		return nil
	}
	coord, err := cl.Coordinator(group)
	if err != nil {
		return err
	}
	_, _ = coord.CommitOffset(req) // refused while the group has members
	return nil
}
