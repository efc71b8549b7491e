package slrocketmq

// Hand-over of a lane's backlog to the trunk when the lane leaves.
//
// In RocketMQ every consumer group reads every message: while env E has a
// live lane for group G, the trunk (group G) skips E's messages and the
// lane instance handles them in its group "G-E". When E leaves the lanes,
// E's messages the lane had not handled yet are behind G-E's consumer
// offsets, and the trunk is already past them in G. Kafka's hand-over
// (adapters/slkafka, shadow/bus/handover.go) has the trunk note the spans
// it skipped in its commit metadata and replay exactly those from the
// lane group; RocketMQ's offset commit (UPDATE_CONSUMER_OFFSET) carries no
// metadata and its consumer groups have no generation to fence a commit
// with, so that design does not carry over.
//
// RocketMQ's model allows a simpler exact one: the trunk adopts the lane
// group. Once a trunk consumer has skipped a message of E (E had a live
// lane), it keeps skipping E's messages in G for as long as it runs; when
// E is not live, the trunk runs a consumer in E's lane group "G-E" itself
// (the same subscriptions and handler, the lane rules of env E), which
// resumes from G-E's committed offsets: the lane's backlog, and every
// later message of E, is handled there, by G-E, once. When E is live
// again, the trunk shuts its G-E consumer down (held messages go back to
// the broker) and the lane instance takes all of G-E's queues.
//
// What it needs and what it does not cover:
//
//   - The lane instance must leave G-E when its env leaves the lanes (stop
//     it, as a removed project environment is): a lane instance that keeps
//     running while not live stays a member of G-E and keeps its share of
//     G-E's queues, whose messages it holds and hands back to the broker
//     (they reach the trunk's G-E consumer through G-E's retry topic when
//     the trunk holds that queue, or the dead-letter topic after the
//     maximum reconsume times).
//   - The client's Shutdown persists a consumer's offsets before its
//     running callbacks return: a message the lane handles while it shuts
//     down may be handled again by the trunk's G-E consumer
//     (at-least-once, as for any RocketMQ consumer that stops).
//   - While the lane and the trunk's G-E consumer are both members of G-E
//     (the lane coming back), the client splits G-E's queues between them
//     and a queue that moves may redeliver messages whose offsets were not
//     committed yet: RocketMQ's at-least-once, as for any group rebalance.
//   - The trunk learns of E from the messages it skips: a trunk restarted
//     after E left takes E's new messages in G and leaves G-E's backlog
//     where it is, unless E is named with [WithHandoverEnvs], which makes
//     the trunk skip E from the start; it runs G-E once it skipped a
//     message of E (so a backlog left from before the restart waits for
//     E's next message).
//   - A lane group without a committed offset (its lane never committed)
//     is read from the second before the earliest message of E the trunk
//     skipped: messages of E the trunk handled itself in that second are
//     handled again (at least once).
//   - Several trunk instances: each learns of E on its own. One that has
//     not skipped a message of E yet (its queues of G held none) takes E's
//     messages in G while another instance's G-E consumer takes the same
//     messages in G-E: handled twice. Name the lane envs with
//     [WithHandoverEnvs] on every trunk instance when the trunk runs more
//     than one instance.

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// handoverPoll is how often a trunk consumer looks at the lanes of the
// envs it adopts.
const handoverPoll = 100 * time.Millisecond

// WithHandoverEnvs names envs whose lanes the trunk treats as seen from
// the start (see the hand-over in the package doc): it never takes their
// messages in the production group and runs their lane groups itself while
// they are not live. Name the envs that have (or had) lane instances, so
// that a restarted trunk does not forget a lane that left. It applies to
// the groups of [Shadow.NewPushConsumer] (the hand-over needs their
// lane-group consumers); a consumer that installs
// [Shadow.ConsumerInterceptor] itself keeps the plain lane rule.
func WithHandoverEnvs(envs ...string) Option {
	return optionFunc(func(c *config) { c.handoverEnvs = append(c.handoverEnvs, envs...) })
}

// adoptLanes wraps the configured lanes of a trunk Shadow: an env the
// trunk has seen with a live lane for a group counts as having a lane for
// that group from then on (the trunk never takes its messages again; the
// trunk's own lane-group consumer does while the lane is away). Only the
// groups of [Shadow.NewPushConsumer] (managed) do: a consumer that runs
// [Shadow.ConsumerInterceptor] itself has no lane-group consumer to hand
// over to, so it keeps the plain lane rule.
type adoptLanes struct {
	inner   envtag.Lanes
	all     []string // WithHandoverEnvs: seen for every managed group
	mu      sync.RWMutex
	managed map[string]bool             // groups with a trunk PushConsumer
	seen    map[string]map[string]int64 // group -> env -> earliest store time (ms) of a skipped message
}

// manage makes group one whose lanes the trunk hands over.
func (a *adoptLanes) manage(group string) {
	a.mu.Lock()
	if a.managed == nil {
		a.managed = map[string]bool{}
	}
	a.managed[group] = true
	a.mu.Unlock()
}

func (a *adoptLanes) HasLane(group, env string) bool {
	return a.inner.HasLane(group, env) || a.saw(group, env)
}

func (a *adoptLanes) saw(group, env string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if !a.managed[group] {
		return false
	}
	_, ok := a.seen[group][env]
	return ok || slices.Contains(a.all, env)
}

// note records that the trunk skipped a message of env in group, stored
// at ts (ms).
func (a *adoptLanes) note(group, env string, ts int64) {
	if env == "" {
		return
	}
	a.mu.RLock()
	old, ok := a.seen[group][env]
	managed := a.managed[group]
	a.mu.RUnlock()
	if !managed || ok && old <= ts {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]map[string]int64{}
	}
	if a.seen[group] == nil {
		a.seen[group] = map[string]int64{}
	}
	if old, ok := a.seen[group][env]; !ok || ts < old {
		a.seen[group][env] = ts
	}
}

// envs returns the envs the trunk skipped messages of in group, with the
// earliest store time of those messages. An env named in
// WithHandoverEnvs is there once the trunk skipped one of its messages.
func (a *adoptLanes) envs(group string) map[string]int64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return maps.Clone(a.seen[group])
}

// noteSkips records the envs of the messages a trunk skipped.
func (s *Shadow) noteSkips(group string, msgs []*primitive.MessageExt, ds []bus.Decision) {
	if s.adopt == nil {
		return
	}
	for i, d := range ds {
		if d.Action == bus.Skip && d.Mark.Env != "" {
			s.adopt.note(group, d.Mark.Env, msgs[i].StoreTimestamp)
		}
	}
}

// forEnv returns a Shadow with s's configuration as a lane instance of env
// that is always live: the rules of the trunk's lane-group consumer.
func (s *Shadow) forEnv(group, env string) (*Shadow, error) {
	c := s.c
	c.bus.Env = env
	c.bus.Lanes = envtag.StaticLanes{group: {env}}
	c.handoverEnvs = nil
	r, err := bus.New(c.bus)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Shadow{c: c, r: r, held: s.held}, nil
}

// subscription is one Subscribe call, replayed on lane-group consumers.
type subscription struct {
	topic    string
	selector consumer.MessageSelector
	h        Handler
}

// watchLanes runs on a trunk consumer with lanes configured until stop:
// it starts a lane-group consumer for every seen env that is not live and
// shuts it down when the env is live again.
func (c *PushConsumer) watchLanes() {
	defer c.wg.Done()
	t := time.NewTicker(handoverPoll)
	defer t.Stop()
	for {
		c.checkLanes()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

func (c *PushConsumer) checkLanes() {
	a := c.s.adopt
	for env, since := range a.envs(c.group) {
		live := a.inner.HasLane(c.group, env)
		c.mu.Lock()
		lc := c.adopted[env]
		c.mu.Unlock()
		switch {
		case !live && lc == nil:
			lc, err := c.adopt(env, since)
			if err != nil { // tried again at the next tick
				slog.Warn("slrocketmq: cannot run the lane group of a lane that left", "group", c.group, "env", env, "err", err)
				continue
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				lc.Shutdown()
				return
			}
			c.adopted[env] = lc
			c.mu.Unlock()
		case live && lc != nil:
			c.mu.Lock()
			delete(c.adopted, env)
			c.mu.Unlock()
			lc.Shutdown()
		}
	}
}

// adopt starts the trunk's consumer of env's lane group. Where the lane
// group has no committed offset (the lane never committed one), it starts
// at the second before the earliest message of env the trunk skipped
// (since, ms): from the end, those would be lost; from the first offset,
// the env's whole history would be handled again.
func (c *PushConsumer) adopt(env string, since int64) (*PushConsumer, error) {
	ls, err := c.s.forEnv(c.group, env)
	if err != nil {
		return nil, err
	}
	inst := fmt.Sprintf("%s-adopt-%d-%d", ls.r.LaneName(c.group), os.Getpid(), instances.Add(1))
	from := time.UnixMilli(since).UTC().Truncate(time.Second).Add(-time.Second).Format("20060102150405") // the client parses it as UTC
	opts := append(slices.Clone(c.opts), consumer.WithInstance(inst),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp), consumer.WithConsumeTimestamp(from))
	lc, err := ls.NewPushConsumer(c.group, opts...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	for _, sub := range subs {
		if err := lc.Subscribe(sub.topic, sub.selector, sub.h); err != nil {
			return nil, err
		}
	}
	if err := lc.Start(); err != nil {
		return nil, err
	}
	return lc, nil
}

// Adopted returns the envs whose lane groups this trunk consumer runs now
// (their lanes left; see the hand-over in the package doc), sorted.
func (c *PushConsumer) Adopted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.adopted))
}
