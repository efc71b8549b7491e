package slrocketmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Handler is the push consumer's callback (the client's own type): ctx
// carries the mark of the messages (see [propagation.FromContext]); every
// message of one call has the same mark.
type Handler func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error)

// Mark returns the mark of a consumed message: its properties (the rules of
// package shadow/bus: names in any letter case, conflicting or invalid
// values refused), or for a message on a shadow topic without a run
// property the fallback run. A malformed property ([shadow.ErrUnsupported])
// and a run mark on a production topic (an anomaly, [shadow.ErrBlocked])
// are a [*shadow.Error]. Mark counts nothing; [Shadow.Decide] does.
func (s *Shadow) Mark(m *primitive.MessageExt) (propagation.Mark, error) {
	return s.markOf(&m.Message)
}

// Context returns ctx carrying the mark of a message the producer
// interceptor prepared or a consumer received (see [Shadow.Mark]), for
// code the client calls without a context: a transaction listener's
// ExecuteLocalTransaction and CheckLocalTransaction (pass &ext.Message)
// must run their local transaction under the message's mark, or a
// load-test message's local writes would be production writes.
func (s *Shadow) Context(ctx context.Context, m *primitive.Message) (context.Context, error) {
	mk, err := s.markOf(m)
	if err != nil {
		return ctx, err
	}
	return propagation.With(ctx, mk), nil
}

func (s *Shadow) markOf(m *primitive.Message) (propagation.Mark, error) {
	_, topic := splitNamespace(m.Topic)
	d := decodeProperties(m.GetProperties())
	mk, bad := d.Mark()
	onShadow := s.r.IsShadow(topic)
	switch {
	case bad != bus.NoField:
		return propagation.Mark{}, shadow.Refuse(Store, topic, "malformed or conflicting "+bad.Name()+" property", propagation.Mark{}, shadow.ErrUnsupported)
	case mk.Run != "" && !onShadow:
		return propagation.Mark{}, shadow.Refuse(Store, topic, "run mark on a production topic (an anomaly)", mk, shadow.ErrBlocked)
	case mk.Run == "" && onShadow:
		mk.Run = s.r.Config().FallbackRun
	}
	return mk, nil
}

// Decide applies the consume rule of package shadow/bus to a message that
// the consumer group group (the production group, without lane suffix or
// shadow naming) received, and counts a refusal. Use it where the
// interceptor cannot decide: a pull consumer (whose interceptors only
// observe messages already consumed) handles a message whose Decision is
// Handle under [propagation.With] of its Mark, skips a Skip, refuses a
// Refuse and holds a Wait back.
func (s *Shadow) Decide(group string, m *primitive.MessageExt) bus.Decision {
	_, topic := splitNamespace(m.Topic)
	d := decodeProperties(m.GetProperties())
	return s.r.Consume(group, topic, &d)
}

// ConsumerInterceptor returns the push consumer interceptor that applies
// the consume rules: install it with consumer.WithInterceptor, last.
// [Shadow.NewPushConsumer] does that for you, and also runs the shadow
// consumer group. The interceptor finds the production group from the
// consumer's group (without namespace, shadow naming and lane suffix).
//
// Of the messages of one consume call it hands the callback only those it
// takes, in calls grouped by mark with the mark in ctx; it acknowledges
// skipped messages (another lane's), refuses malformed or anomalous ones
// (counted, [WithRefused], acknowledged, never handled) and holds back
// messages that must wait (kill switch off, lane not live) for up to
// [WithHold]; a message still waiting then is handed back to the broker
// (the call reports ConsumeRetryLater, or SuspendCurrentQueueAMoment for an
// orderly consumer) and nothing of that call is handled. A callback that
// fails stops the call: the client redelivers the whole call, as it does
// without the interceptor.
//
// For a pull consumer the client runs interceptors after the fact (they
// cannot keep a message from the application); there it passes the call
// on unchanged: use [Shadow.Decide].
func (s *Shadow) ConsumerInterceptor() primitive.Interceptor {
	return s.consumeInterceptor("", nil, -1)
}

func (s *Shadow) consumeInterceptor(group string, stop <-chan struct{}, maxRe int32) primitive.Interceptor {
	return func(ctx context.Context, req, reply any, next primitive.Invoker) error {
		if reply == nil {
			return next(ctx, req, reply) // pull consumer: after the fact
		}
		msgs, ok := req.([]*primitive.MessageExt)
		holder, hok := reply.(*consumer.ConsumeResultHolder)
		if !ok || !hok || holder == nil {
			// a call this interceptor does not know: handle nothing
			if hok && holder != nil {
				holder.ConsumeResult = consumer.ConsumeRetryLater
			}
			return fmt.Errorf("%w: consumer interceptor called with %T and %T", ErrUnknownCall, req, reply)
		}
		g := group
		if g == "" {
			if mc, ok := primitive.GetConsumerCtx(ctx); ok {
				g = s.productionGroup(mc.ConsumerGroup)
			}
		}
		return s.consume(ctx, g, req, msgs, holder, next, stop, maxRe)
	}
}

// consume applies the rules to msgs (req, as the client passed it).
func (s *Shadow) consume(ctx context.Context, group string, req any, msgs []*primitive.MessageExt, holder *consumer.ConsumeResultHolder, next primitive.Invoker, stop <-chan struct{}, maxRe int32) error {
	var one [1]bus.Decision
	ds := one[:]
	if len(msgs) != 1 {
		ds = make([]bus.Decision, len(msgs))
	}
	waiting := 0
	for i, m := range msgs {
		if ds[i] = s.Decide(group, m); ds[i].Action == bus.Wait { // a refusal is counted here, once
			waiting++
		}
	}
	s.noteSkips(group, msgs, ds) // handover.go
	if waiting > 0 {
		s.hold(group, ds, stop)
		waiting = 0
		for i, m := range msgs {
			if ds[i].Action == bus.Wait { // not a refusal: deciding again counts nothing
				if ds[i] = s.Decide(group, m); ds[i].Action == bus.Wait {
					waiting++
				}
			}
		}
		if waiting > 0 {
			s.noteHeld(msgs, func(i int) bool { return ds[i].Mark.Run != "" }) // evidence.go
			holder.ConsumeResult = consumer.ConsumeRetryLater
			if _, orderly := primitive.GetOrderlyCtx(ctx); orderly {
				holder.ConsumeResult = consumer.SuspendCurrentQueueAMoment
			}
			return nil
		}
	}
	holder.ConsumeResult = consumer.ConsumeSuccess
	if all(ds) { // the usual case: one mark, nothing left out
		return unstop(s.handle(ctx, group, ds[0].Mark, req, msgs, holder, next, maxRe))
	}
	var run []*primitive.MessageExt
	var runMark propagation.Mark
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		batch := run
		run = nil
		return s.handle(ctx, group, runMark, batch, batch, holder, next, maxRe) // a new slice: boxed once
	}
	for i, m := range msgs {
		d := ds[i]
		switch d.Action {
		case bus.Handle:
			if len(run) > 0 && d.Mark != runMark {
				if err := flush(); err != nil {
					return unstop(err)
				}
			}
			run, runMark = append(run, m), d.Mark
		case bus.Refuse:
			if s.c.refused != nil {
				s.c.refused(context.WithoutCancel(ctx), m, d.Err)
			}
		}
	}
	return unstop(flush())
}

// all reports whether every decision is Handle, under one mark.
func all(ds []bus.Decision) bool {
	for _, d := range ds {
		if d.Action != bus.Handle || d.Mark != ds[0].Mark {
			return false
		}
	}
	return true
}

// handle hands req (batch, as a []*primitive.MessageExt boxed once), all
// marked m, to the callback of group; errStopped when it did not succeed.
// It counts the evidence of marked messages (evidence.go).
func (s *Shadow) handle(ctx context.Context, group string, m propagation.Mark, req any, batch []*primitive.MessageExt, holder *consumer.ConsumeResultHolder, next primitive.Invoker, maxRe int32) error {
	if m != propagation.FromContext(ctx) {
		ctx = propagation.With(ctx, m)
	}
	s.countEntries(ctx, group, m, batch)
	err := next(ctx, req, holder)
	if err == nil && (holder.ConsumeResult == consumer.ConsumeSuccess || holder.ConsumeResult == consumer.Commit) {
		return nil
	}
	_, orderly := primitive.GetOrderlyCtx(ctx)
	s.countErrs(ctx, m, batch, maxRe, orderly)
	if err != nil {
		return err
	}
	return errStopped
}

// ErrUnknownCall is returned by the consumer interceptor for a call whose
// request or reply type it does not know (another client version, say):
// it hands nothing to the callback.
var ErrUnknownCall = errors.New("slrocketmq: unknown interceptor call")

// errStopped stops a consume call after a callback that did not succeed.
var errStopped = errors.New("slrocketmq: callback did not succeed")

func unstop(err error) error {
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

// hold waits until every waiting decision of ds may go on, the hold time
// runs out or stop is closed.
func (s *Shadow) hold(group string, ds []bus.Decision, stop <-chan struct{}) {
	deadline := time.Now().Add(s.c.hold)
	t := time.NewTicker(s.c.poll)
	defer t.Stop()
	for {
		ready := true
		for _, d := range ds {
			if d.Action == bus.Wait && !s.r.Ready(group, d) {
				ready = false
				break
			}
		}
		if ready || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// instances numbers the client instances of shadow consumers.
var instances atomic.Int64

// PushConsumer runs one consumer group with the consume rules: the
// production (or lane) consumer and, for groups named in
// [WithShadowGroups], the shadow consumer on the shadow twins of the
// subscribed topics, with one handler.
type PushConsumer struct {
	s       *Shadow
	group   string
	prod    rocketmq.PushConsumer
	shadow  rocketmq.PushConsumer
	shadows int // shadow subscriptions
	stop    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	started []rocketmq.PushConsumer
	// hand-over (handover.go), trunk consumers with lanes only
	opts    []consumer.Option
	subs    []subscription
	adopted map[string]*PushConsumer // env -> the trunk's consumer of its lane group
	closed  bool
	wg      sync.WaitGroup
}

// NewPushConsumer builds the consumers of the production consumer group
// group from the client's options opts (name server, consume-from, batch
// size...): the production consumer (group "<group>-<env>" for a lane
// instance) and, when group is named in [WithShadowGroups], the shadow
// consumer in [Shadow.ShadowGroup], on a client instance of its own (the
// instance name in opts is replaced by a unique one). Both run [Shadow.ConsumerInterceptor],
// installed after the interceptors opts install; the group options set
// here override any in opts.
func (s *Shadow) NewPushConsumer(group string, opts ...consumer.Option) (*PushConsumer, error) {
	if group == "" || !validName(group, false) || s.c.groupNaming.IsShadow(group) || s.r.IsLaneName(group) {
		return nil, fmt.Errorf("%w: consumer group %q: want a production group name (not a shadow or lane name)", ErrConfig, group)
	}
	c := &PushConsumer{s: s, group: group, stop: make(chan struct{}), opts: slices.Clone(opts), adopted: map[string]*PushConsumer{}}
	icp := consumer.WithInterceptor(s.consumeInterceptor(group, c.stop, maxReconsume(opts)))
	base := opts[:len(opts):len(opts)]
	prod, err := rocketmq.NewPushConsumer(append(base, consumer.WithGroupName(s.r.LaneName(group)), icp)...)
	if err != nil {
		return nil, wrapClientErr(fmt.Sprintf("group %q: new push consumer", group), err)
	}
	c.prod = prod
	if s.adopt != nil {
		s.adopt.manage(group) // handover.go
	}
	if sg, ok := s.ShadowGroup(group); ok {
		// its own client instance: the client rebalances every consumer of
		// an instance from a goroutine each Start launches, which reads a
		// consumer the next Start is still writing (a data race in the
		// client when two consumers of one instance start one after the
		// other)
		inst := fmt.Sprintf("%s-%d-%d", sg, os.Getpid(), instances.Add(1))
		sh, err := rocketmq.NewPushConsumer(append(base, consumer.WithGroupName(sg), consumer.WithInstance(inst), icp)...)
		if err != nil {
			return nil, wrapClientErr(fmt.Sprintf("group %q: new shadow push consumer", sg), err)
		}
		c.shadow = sh
	}
	return c, nil
}

// Subscribe subscribes h to topic in the production consumer and, when the
// group has a shadow consumer and topic a configured twin, to the shadow
// topic in the shadow consumer. Call it before [PushConsumer.Start].
func (c *PushConsumer) Subscribe(topic string, selector consumer.MessageSelector, h Handler) error {
	if topic == "" || c.s.r.IsShadow(topic) {
		return fmt.Errorf("%w: group %q: subscribe to %q: want a production topic", ErrConfig, c.group, topic)
	}
	if err := c.prod.Subscribe(topic, selector, h); err != nil {
		return wrapClientErr(fmt.Sprintf("group %q: subscribe %q", c.group, topic), err)
	}
	c.mu.Lock()
	c.subs = append(c.subs, subscription{topic, selector, h})
	c.mu.Unlock()
	if st, ok := c.s.ShadowTopic(topic); ok && c.shadow != nil {
		if err := c.shadow.Subscribe(st, selector, h); err != nil {
			return wrapClientErr(fmt.Sprintf("group %q: subscribe %q", c.group, st), err)
		}
		c.mu.Lock()
		c.shadows++
		c.mu.Unlock()
	}
	return nil
}

// Start starts the production consumer and, when it has a subscription,
// the shadow consumer. When one fails to start, the other is shut down.
func (c *PushConsumer) Start() error {
	if err := c.prod.Start(); err != nil {
		return wrapClientErr(fmt.Sprintf("group %q: start", c.group), err)
	}
	c.mu.Lock()
	c.started = append(c.started, c.prod)
	shadows := c.shadows
	c.mu.Unlock()
	if c.shadow != nil && shadows > 0 {
		if err := c.shadow.Start(); err != nil {
			c.Shutdown()
			return wrapClientErr(fmt.Sprintf("group %q: start shadow consumer", c.group), err)
		}
		c.mu.Lock()
		c.started = append(c.started, c.shadow)
		c.mu.Unlock()
	}
	if c.s.adopt != nil {
		c.wg.Add(1)
		go c.watchLanes() // handover.go
	}
	return nil
}

// Shutdown releases held messages (they are handed back to the broker)
// and shuts the started consumers down; it returns the first error.
func (c *PushConsumer) Shutdown() error {
	c.once.Do(func() { close(c.stop) })
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait() // the lane watcher (handover.go)
	c.mu.Lock()
	started := c.started
	c.started = nil
	adopted := c.adopted
	c.adopted = map[string]*PushConsumer{}
	c.mu.Unlock()
	var first error
	for _, lc := range adopted {
		if err := lc.Shutdown(); err != nil && first == nil {
			first = err
		}
	}
	for _, pc := range started {
		if err := pc.Shutdown(); err != nil && first == nil {
			first = wrapClientErr(fmt.Sprintf("group %q: shutdown", c.group), err)
		}
	}
	return first
}

// Production returns the production (or lane) consumer.
func (c *PushConsumer) Production() rocketmq.PushConsumer { return c.prod }

// Shadow returns the shadow consumer, nil when the group has none.
func (c *PushConsumer) Shadow() rocketmq.PushConsumer { return c.shadow }
