package slsarama

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Store is the store name on every [*shadow.Error] and decision counter.
const Store = "kafka"

var (
	hRun = []byte(bus.HeaderRun)
	hEnv = []byte(bus.HeaderEnv)
)

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	bus     bus.Config
	groups  bus.Groups
	refused RefusedFunc
	rt      *shadowlane.Runtime
	poll    time.Duration
	retry   bus.Retry
}

// WithRetry makes a claim try a message whose handler failed again, up to
// attempts times in all, waiting backoff before the second attempt and
// twice as long before each next one, at most maxBackoff (0: no cap). The
// partition waits meanwhile (order is kept). A message that failed on every
// attempt goes to the [WithRefused] callback with an error wrapping
// [ErrRetriesExhausted] (ctx carries its mark); without a callback the
// claim ends unmarked, as without retries. When the session ends during a
// wait, the message is not marked.
func WithRetry(attempts int, backoff, maxBackoff time.Duration) Option {
	return optionFunc(func(c *config) { c.retry = bus.Retry{Attempts: attempts, Backoff: backoff, MaxBackoff: maxBackoff} })
}

// ErrRetriesExhausted is wrapped by the error a [RefusedFunc] gets for a
// message whose handler failed on every attempt of [WithRetry].
var ErrRetriesExhausted = errors.New("slsarama: handler failed on every attempt")

// WithShadowTopics names production topics that have a shadow twin.
func WithShadowTopics(topics ...string) Option {
	return optionFunc(func(c *config) { c.bus.Names.Add(topics...) })
}

// WithAll declares that every production topic has a shadow twin.
func WithAll() Option { return optionFunc(func(c *config) { c.bus.Names.SetAll() }) }

// WithNaming sets the shadow topic naming (default [shadow.DefaultTopic]).
func WithNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.bus.Naming = n }) }

// WithGroupNaming sets the shadow group naming (default [shadow.DefaultGroup]).
func WithGroupNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.groups.Naming = n })
}

// WithEnv makes this instance a lane instance of env.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.bus.Env = env }) }

// WithLanes tells consumers which environments have a live lane (keyed by
// production group): the trunk skips their messages; a lane instance whose
// env is not listed takes nothing and leaves its messages unmarked.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.bus.Lanes = l }) }

// WithFallbackRun sets the run id of messages consumed from a shadow topic
// without a run header (default [bus.DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.bus.FallbackRun = run })
}

// WithRuntime takes the kill switch from rt: while rt says load-test
// traffic is off, a claim that meets a marked message waits (the message
// is not marked) until it is on again or the session ends. Default: the
// default runtime ([shadowlane.Default]), looked up per message.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// WithShadowGroups names the consumer groups that get a shadow consumer
// (shadow group on the shadow twins of their shadowed topics) beside the
// production one in a [Consumer]. Groups not named here never consume
// shadow topics. May be given several times; the sets add up.
func WithShadowGroups(groups ...string) Option {
	return optionFunc(func(c *config) { c.groups.Shadowed.Add(groups...) })
}

// RefusedFunc is told about a consumed message that was refused: its mark
// headers are malformed, or it carries a run mark on a production topic (an
// anomaly); ctx carries no mark. It is told once, by the trunk's group
// (lane groups skip their copy). Returning nil marks the message consumed
// (it was dead-lettered or may be dropped); returning an error ends the
// claim without marking it, so it is delivered again (a [Consumer] stops
// and returns the error).
type RefusedFunc func(ctx context.Context, msg *sarama.ConsumerMessage, err error) error

// WithRefused sets what happens to a refused message. By default it is
// counted as a block, marked and dropped; the handler never sees it either
// way.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("slsarama: invalid configuration")

// Shadow applies shadowlane's rules (package shadow/bus) to sarama
// producers and consumers.
type Shadow struct {
	c   config
	r   *bus.Rules
	obs shadowlane.BusObserver // delivery counts, per-run evidence

	// the lost-mark guard's alert bookkeeping (lostmark.go)
	intercepting atomic.Bool  // OnSend has run
	alerted      sync.Map     // *sarama.ProducerMessage the wrapper alerted on, while sent
	pending      atomic.Int32 // entries in alerted
}

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{bus: bus.Config{Store: Store, Kind: "topic", Naming: shadow.DefaultTopic}, groups: bus.Groups{Naming: shadow.DefaultGroup}, poll: 50 * time.Millisecond}
	for _, o := range opts {
		o.apply(&c)
	}
	shadowlane.BindBus(c.rt, &c.bus)
	r, err := bus.NewGrouped(c.bus, c.groups, c.retry)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Shadow{c: c, r: r, obs: shadowlane.NewBusObserver(c.rt, Store)}, nil
}

// Stats returns what this Shadow's consumers counted around commits and
// lane hand-overs (see [bus.Stats]).
func (s *Shadow) Stats() bus.Stats { return s.obs.Snapshot() }

// Rules returns the message-system rules this Shadow applies.
func (s *Shadow) Rules() *bus.Rules { return s.r }

func (s *Shadow) hasShadow(topic string) bool { return s.r.Has(topic) }

// ShadowTopics returns the shadow twins of those topics that have one: the
// topics of the shadow consumer group.
func (s *Shadow) ShadowTopics(topics ...string) []string {
	var out []string
	for _, t := range topics {
		if s.hasShadow(t) {
			out = append(out, s.r.ShadowName(t))
		}
	}
	return out
}

// Group returns the consumer group this instance joins for the production
// group: group itself for the trunk, "<group>-<env>" for a lane.
func (s *Shadow) Group(group string) string { return s.r.LaneName(group) }

// ShadowGroup returns the shadow group name for the production group.
func (s *Shadow) ShadowGroup(group string) string { return s.c.groups.Naming.Shadow(s.Group(group)) }

// Prepare applies the produce rules to msg under the mark of ctx (sarama
// messages carry no context): a marked message goes to the shadow twin of
// its topic with the mark headers, or is refused with
// [shadow.ErrNoShadowTarget]; an unmarked message keeps its topic, loses
// stale mark headers, and is refused with [shadow.ErrShadowFromProduction]
// when its topic is a shadow topic, or with [shadow.ErrLostMark] when its
// key or headers look like load-test data (config testData:).
func (s *Shadow) Prepare(ctx context.Context, msg *sarama.ProducerMessage) error {
	return s.prepare(propagation.FromContext(ctx), msg, fromPrepare)
}

func (s *Shadow) prepare(m propagation.Mark, msg *sarama.ProducerMessage, from seam) error {
	to, err := s.r.Produce(m, msg.Topic)
	if err != nil {
		return err
	}
	if td := s.testData(); td != nil && m.Run == "" {
		if err := s.lostMark(td, msg, from); err != nil { // lostmark.go (testData:)
			return err
		}
	}
	msg.Topic = to
	setHeaders(msg, m)
	return nil
}

func isMarkHeader(k []byte) bool { return bus.FieldOfBytes(k) != bus.NoField }

func setHeaders(msg *sarama.ProducerMessage, m propagation.Mark) {
	msg.Headers = bus.SetMarkHeaders(msg.Headers, m, isMarkRecordHeader, header)
}

func isMarkRecordHeader(h *sarama.RecordHeader) bool { return isMarkHeader(h.Key) }

func header(key, value string) sarama.RecordHeader {
	k := hRun
	if key == bus.HeaderEnv {
		k = hEnv
	}
	return sarama.RecordHeader{Key: k, Value: []byte(value)}
}

// decode feeds the mark headers of a consumed or produced message to a
// decoder.
func decode(hs []*sarama.RecordHeader) bus.Decoder {
	var d bus.Decoder
	for _, h := range hs {
		if h == nil {
			continue
		}
		if f := bus.FieldOfBytes(h.Key); f != bus.NoField {
			d.Add(f, string(h.Value), true)
		}
	}
	return d
}

// OnSend implements [sarama.ProducerInterceptor], the safety net for
// messages produced without the context-taking wrapper: sarama messages
// carry no context, so the interceptor judges by the mark headers. A
// message with a run header is moved to the shadow twin of its topic; one
// without a twin, one with malformed mark headers, an unmarked message
// for a shadow topic, and an unmarked message whose key or headers look like
// load-test data (the lost-mark guard, config testData:) get an empty
// topic, which sarama fails before sending. Use [Producer] for typed errors.
func (s *Shadow) OnSend(msg *sarama.ProducerMessage) {
	if !s.intercepting.Load() {
		s.intercepting.Store(true)
	}
	hs := make([]*sarama.RecordHeader, 0, len(msg.Headers))
	for i := range msg.Headers {
		if isMarkHeader(msg.Headers[i].Key) {
			hs = append(hs, &msg.Headers[i])
		}
	}
	d := decode(hs)
	m, bad := d.Mark()
	if bad != bus.NoField {
		s.decisions().Record("", Store, msg.Topic, shadow.Block) // malformed mark: no run to trust
		msg.Topic = ""
		return
	}
	to, err := s.r.Recheck(m, msg.Topic)
	if err != nil {
		msg.Topic = ""
		return
	}
	if td := s.testData(); td != nil && m.Run == "" && s.lostMark(td, msg, fromInterceptor) != nil { // lostmark.go (testData:)
		msg.Topic = ""
		return
	}
	msg.Topic = to
	setHeaders(msg, m)
}

var _ sarama.ProducerInterceptor = (*Shadow)(nil)

// Producer is a context-taking wrapper of a sarama SyncProducer.
type Producer struct {
	s *Shadow
	p sarama.SyncProducer
}

// decisions is the series of the adapter's runtime.
func (s *Shadow) decisions() *shadow.Series { return shadowlane.OrDefault(s.c.rt).Decisions() }

// SyncProducer wraps p.
func (s *Shadow) SyncProducer(p sarama.SyncProducer) *Producer { return &Producer{s: s, p: p} }

// SendMessage is SyncProducer.SendMessage under the mark of ctx. A refused
// message is a [*shadow.Error] and is not sent.
func (p *Producer) SendMessage(ctx context.Context, msg *sarama.ProducerMessage) (partition int32, offset int64, err error) {
	if err := p.s.prepare(propagation.FromContext(ctx), msg, fromWrapper); err != nil {
		return -1, -1, err
	}
	defer p.s.sent(msg) // lostmark.go
	partition, offset, err = p.p.SendMessage(msg)
	if p.s.r.IsShadow(msg.Topic) { // load-test traffic's messages are on shadow topics
		p.s.obs.PublishFailed(ctx, err)
	}
	return partition, offset, err
}

// Mark returns the mark of a consumed message (the rules of package
// shadow/bus: headers in any letter case, validated; a shadow-topic message
// without a run header is load-test traffic). Malformed headers
// ([shadow.ErrUnsupported]) and a run mark on a production topic (an
// anomaly, [shadow.ErrBlocked]) are a [*shadow.Error].
func (s *Shadow) Mark(msg *sarama.ConsumerMessage) (propagation.Mark, error) {
	d := decode(msg.Headers)
	return s.r.MarkOf(msg.Topic, &d)
}

// Takes reports whether this instance's consumer of the production group
// takes a message marked m (lanes).
func (s *Shadow) Takes(group string, m propagation.Mark) bool { return s.r.Takes(group, m) }

// MessageHandler handles one consumed message; ctx carries its mark.
type MessageHandler func(ctx context.Context, msg *sarama.ConsumerMessage) error

// GroupHandler returns a [sarama.ConsumerGroupHandler] for the production
// group that rebuilds each message's mark into h's context, marks the
// message consumed after h returned nil, skips (and marks) messages another
// lane takes, and never hands h a message with malformed mark headers (it is
// counted as a block and passed to the [WithRefused] callback, then marked
// unless the callback failed). An error from h ends the claim
// without marking the message, so it is delivered again after the session
// restarts. Use the same handler in the shadow group ([Shadow.ShadowGroup]
// on [Shadow.ShadowTopics]).
func (s *Shadow) GroupHandler(group string, h MessageHandler) sarama.ConsumerGroupHandler {
	return groupHandler{s: s, group: group, h: h}
}

type groupHandler struct {
	s     *Shadow
	group string
	h     MessageHandler
	tp    *trunkPlan  // a Consumer's trunk plan: hand-over ledger, floors, refusal commits
	win   *laneWindow // a Consumer's lane plan: the start window
	log   *handledLog
	steps *bus.LaneSteps // the lane steps of a Consumer's plan
}

func (g groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	switch {
	case g.tp != nil:
		return g.tp.load(sess.Claims())
	case g.win != nil:
		return g.win.load(sess.Claims())
	}
	return nil
}

func (groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// mark marks msg consumed, with the hand-over spans of its partition in
// the metadata for a Consumer's trunk.
func (g groupHandler) mark(sess sarama.ConsumerGroupSession, msg *sarama.ConsumerMessage) string {
	meta := ""
	switch {
	case g.tp != nil:
		var ok bool
		if meta, ok = g.tp.skips.Metadata(partOf(msg)); !ok {
			g.s.obs.Unpersisted()
		}
	case g.win != nil:
		meta = g.win.Metadata(partOf(msg))
	}
	sess.MarkMessage(msg, meta)
	return meta
}

func (g groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	next := claim.InitialOffset()
	if g.win != nil {
		// A lane that leaves opens its start window again on the
		// partition: the trunk takes the env's messages while the lane is
		// away, and the lane passes over those when it comes back.
		defer func() {
			if next >= 0 && !g.s.r.Live(g.group) {
				sess.ResetOffset(claim.Topic(), claim.Partition(), next, bus.ReopenMetadata)
			}
		}()
	}
	prod := propagation.With(sess.Context(), propagation.Mark{}) // every production message's handler context, built once
	return eachMessage(sess, claim, func(msg *sarama.ConsumerMessage) (bool, error) {
		var dec bus.Decision
		for {
			// The lane steps may wait on the broker; the kill switch
			// is read after them.
			d := decode(msg.Headers)
			var err error
			if dec, err = g.s.r.ConsumeRecord(sess.Context(), g.group, partOf(msg), msg.Offset, &d, g.steps); err != nil {
				return true, err
			}
			if dec.Action != bus.Wait {
				break
			}
			// Kill switch off, or this lane is not live: the message
			// is not marked; wait here until it may be taken, or the
			// session ends (then it is delivered again).
			if !g.s.wait(sess.Context(), g.group, dec) {
				return true, nil
			}
		}
		refused := false
		switch dec.Action {
		case bus.Refuse:
			if f := g.s.c.refused; f != nil {
				if err := f(prod, msg, dec.Err); err != nil {
					return true, err
				}
			}
			refused = true
		case bus.Handle:
			r, err := g.handle(sess.Context(), prod, msg, dec.Mark)
			if err != nil {
				return true, err
			}
			if refused = r; !r && g.log != nil {
				g.log.add(partOf(msg), msg.Offset)
			}
		}
		meta := g.mark(sess, msg)
		next = msg.Offset + 1
		if refused && g.tp != nil {
			// A refusal is committed at once (retrying a rejected
			// commit), so that it reaches the callback once even when
			// a later commit of the session fails.
			g.tp.commitRefusal(sess, g.tp.p.Group, msg, meta)
		}
		return false, nil
	})
}

// eachMessage hands f the messages of claim until the session ends or the
// claim closes (nil), or f stops (with its error).
func eachMessage(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim, f func(*sarama.ConsumerMessage) (stop bool, err error)) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if stop, err := f(msg); stop || err != nil {
				return err
			}
		}
	}
}

// handle runs the handler with the retries of [WithRetry]; after the last
// failed attempt the message goes to the refusal callback (refused: it
// did, and the callback returned nil). prod is ctx carrying the zero mark
// (nil: built here), the handler's context for production work: a claim
// builds it once rather than allocating a context per message.
func (g groupHandler) handle(ctx, prod context.Context, msg *sarama.ConsumerMessage, m propagation.Mark) (refused bool, err error) {
	c := &g.s.c
	mctx := prod
	if !m.IsZero() || mctx == nil {
		mctx = propagation.With(ctx, m)
	}
	if m.Run != "" { // evidence counts marked work only: skip the target for production
		g.s.obs.Entry(mctx, g.s.r.Production(msg.Topic), g.group)
	}
	var exhausted bool
	if err = g.h(mctx, msg); err != nil { // the retries (no closure on the path of a handled message)
		exhausted, err = c.retry.After(ctx, err, func() error { return g.h(mctx, msg) })
	}
	if bus.Final(ctx, exhausted, err) {
		g.s.obs.HandlerFailed(mctx)
	}
	if !exhausted {
		return false, err
	}
	err = fmt.Errorf("%w (%d attempts): %w", ErrRetriesExhausted, c.retry.Attempts, err)
	if c.refused != nil {
		err = c.refused(mctx, msg, err)
		return err == nil, err
	}
	return false, err
}

// wait waits until a claim that waited on d may take messages again; false
// when ctx ended first.
func (s *Shadow) wait(ctx context.Context, group string, d bus.Decision) bool {
	return s.r.WaitReady(ctx, group, d, s.c.poll)
}
