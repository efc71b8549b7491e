package sarama

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Header names the mark travels under in Kafka record headers; written
// exactly so, read ignoring ASCII case.
const (
	HeaderRun = "X-Shadowlane-Run"
	HeaderEnv = "X-Shadowlane-Env"
)

// Store is the store name on every [*shadow.Error] and decision counter.
const Store = "kafka"

// DefaultFallbackRun is the run id of a message consumed from a shadow
// topic without a run header.
const DefaultFallbackRun = "unattributed"

var (
	hRun = []byte(HeaderRun)
	hEnv = []byte(HeaderEnv)
)

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	topics      shadow.Naming
	groups      shadow.Naming
	all         bool
	set         map[string]struct{}
	env         string
	lanes       envtag.Lanes
	fallbackRun string
	shadowGrps  map[string]struct{}
	refused     RefusedFunc
}

// WithShadowTopics names production topics that have a shadow twin.
func WithShadowTopics(topics ...string) Option {
	return optionFunc(func(c *config) {
		if c.set == nil {
			c.set = map[string]struct{}{}
		}
		for _, t := range topics {
			c.set[t] = struct{}{}
		}
	})
}

// WithAllTopics declares that every production topic has a shadow twin.
func WithAllTopics() Option { return optionFunc(func(c *config) { c.all = true }) }

// WithTopicNaming sets the shadow topic naming (default [shadow.DefaultTopic]).
func WithTopicNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.topics = n }) }

// WithGroupNaming sets the shadow group naming (default [shadow.DefaultGroup]).
func WithGroupNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.groups = n }) }

// WithEnv makes this instance a lane instance of env.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.env = env }) }

// WithLanes tells trunk consumers which environments have a live lane.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.lanes = l }) }

// WithShadowGroups names the consumer groups that get a shadow consumer
// (shadow group on the shadow twins of their shadowed topics) beside the
// production one in a [Consumer]. Groups not named here never consume
// shadow topics. May be given several times; the sets add up.
func WithShadowGroups(groups ...string) Option {
	return optionFunc(func(c *config) {
		if c.shadowGrps == nil {
			c.shadowGrps = map[string]struct{}{}
		}
		for _, g := range groups {
			c.shadowGrps[g] = struct{}{}
		}
	})
}

// RefusedFunc is told about a consumed message that was refused because its
// mark headers are malformed; ctx carries no mark. Returning nil marks the
// message consumed (it was dead-lettered or may be dropped); returning an
// error ends the claim without marking it, so it is delivered again (a
// [Consumer] stops and returns the error).
type RefusedFunc func(ctx context.Context, msg *sarama.ConsumerMessage, err error) error

// WithRefused sets what happens to a consumed message whose mark headers
// are malformed. By default it is counted as a block, marked and dropped;
// the handler never sees it either way.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("shadowlane/sarama: invalid configuration")

// Shadow applies shadowlane's rules to sarama producers and consumers.
type Shadow struct{ c config }

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{topics: shadow.DefaultTopic, groups: shadow.DefaultGroup, fallbackRun: DefaultFallbackRun}
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.topics.Validate(); err != nil {
		return nil, fmt.Errorf("%w: topic naming: %w", ErrConfig, err)
	}
	if err := c.groups.Validate(); err != nil {
		return nil, fmt.Errorf("%w: group naming: %w", ErrConfig, err)
	}
	if c.env != "" && !propagation.ValidID(c.env) {
		return nil, fmt.Errorf("%w: env %q is not a valid id", ErrConfig, c.env)
	}
	for t := range c.set {
		if t == "" || c.topics.IsShadow(t) {
			return nil, fmt.Errorf("%w: %q is empty or already a shadow topic", ErrConfig, t)
		}
	}
	for g := range c.shadowGrps {
		if g == "" || c.groups.IsShadow(g) {
			return nil, fmt.Errorf("%w: shadow group list names %q, which is empty or already a shadow name", ErrConfig, g)
		}
	}
	return &Shadow{c: c}, nil
}

func (s *Shadow) hasShadow(topic string) bool {
	if topic == "" || s.c.topics.IsShadow(topic) {
		return false
	}
	_, ok := s.c.set[topic]
	return s.c.all || ok
}

// ShadowTopics returns the shadow twins of those topics that have one: the
// topics of the shadow consumer group.
func (s *Shadow) ShadowTopics(topics ...string) []string {
	var out []string
	for _, t := range topics {
		if s.hasShadow(t) {
			out = append(out, s.c.topics.Shadow(t))
		}
	}
	return out
}

// Group returns the consumer group this instance joins for the production
// group: group itself for the trunk, "<group>-<env>" for a lane.
func (s *Shadow) Group(group string) string {
	if s.c.env == "" {
		return group
	}
	return group + "-" + s.c.env
}

// ShadowGroup returns the shadow group name for the production group.
func (s *Shadow) ShadowGroup(group string) string { return s.c.groups.Shadow(s.Group(group)) }

// Prepare applies the produce rules to msg under the mark of ctx (sarama
// messages carry no context): a marked message goes to the shadow twin of
// its topic with the mark headers, or is refused with
// [shadow.ErrNoShadowTarget]; an unmarked message keeps its topic, loses
// stale mark headers, and is refused with [shadow.ErrShadowFromProduction]
// when its topic is a shadow topic.
func (s *Shadow) Prepare(ctx context.Context, msg *sarama.ProducerMessage) error {
	return s.prepare(propagation.FromContext(ctx), msg)
}

func (s *Shadow) prepare(m propagation.Mark, msg *sarama.ProducerMessage) error {
	to, err := shadow.Route(Store, "topic", s.c.topics, m, msg.Topic, s.hasShadow, nil)
	if err != nil {
		return err
	}
	msg.Topic = to
	setHeaders(msg, m)
	return nil
}

func isMarkHeader(k []byte) bool { return bytes.EqualFold(k, hRun) || bytes.EqualFold(k, hEnv) }

func setHeaders(msg *sarama.ProducerMessage, m propagation.Mark) {
	hs := msg.Headers
	n := 0
	for _, h := range hs {
		if isMarkHeader(h.Key) {
			continue
		}
		hs[n] = h
		n++
	}
	if n != len(hs) {
		clear(hs[n:])
		hs = hs[:n]
	}
	if m.Run != "" {
		hs = append(hs, sarama.RecordHeader{Key: hRun, Value: []byte(m.Run)})
	}
	if m.Env != "" && propagation.ValidID(m.Env) {
		hs = append(hs, sarama.RecordHeader{Key: hEnv, Value: []byte(m.Env)})
	}
	msg.Headers = hs
}

// headerMark reads the mark headers of a consumed or produced message.
func headerMark(hs []*sarama.RecordHeader) (m propagation.Mark, bad string) {
	var seenRun, seenEnv bool
	for _, h := range hs {
		if h == nil {
			continue
		}
		switch {
		case bytes.EqualFold(h.Key, hRun):
			v := string(h.Value)
			if !propagation.ValidID(v) || (seenRun && v != m.Run) {
				return propagation.Mark{}, HeaderRun
			}
			m.Run, seenRun = v, true
		case bytes.EqualFold(h.Key, hEnv):
			v := string(h.Value)
			if !propagation.ValidID(v) || (seenEnv && v != m.Env) {
				return propagation.Mark{}, HeaderEnv
			}
			m.Env, seenEnv = v, true
		}
	}
	return m, ""
}

// OnSend implements [sarama.ProducerInterceptor], the safety net for
// messages produced without the context-taking wrapper: sarama messages
// carry no context, so the interceptor judges by the mark headers. A
// message with a run header is moved to the shadow twin of its topic; one
// without a twin, one with malformed mark headers, and an unmarked message
// for a shadow topic get an empty topic, which sarama fails before sending.
// Use [Producer] for typed errors.
func (s *Shadow) OnSend(msg *sarama.ProducerMessage) {
	hs := make([]*sarama.RecordHeader, 0, len(msg.Headers))
	for i := range msg.Headers {
		if isMarkHeader(msg.Headers[i].Key) {
			hs = append(hs, &msg.Headers[i])
		}
	}
	m, bad := headerMark(hs)
	if bad != "" {
		shadow.Record(Store, msg.Topic, shadow.Block)
		msg.Topic = ""
		return
	}
	if err := s.prepare(m, msg); err != nil {
		msg.Topic = ""
	}
}

var _ sarama.ProducerInterceptor = (*Shadow)(nil)

// Producer is a context-taking wrapper of a sarama SyncProducer.
type Producer struct {
	s *Shadow
	p sarama.SyncProducer
}

// SyncProducer wraps p.
func (s *Shadow) SyncProducer(p sarama.SyncProducer) *Producer { return &Producer{s: s, p: p} }

// SendMessage is SyncProducer.SendMessage under the mark of ctx. A refused
// message is a [*shadow.Error] and is not sent.
func (p *Producer) SendMessage(ctx context.Context, msg *sarama.ProducerMessage) (partition int32, offset int64, err error) {
	if err := p.s.Prepare(ctx, msg); err != nil {
		return -1, -1, err
	}
	return p.p.SendMessage(msg)
}

// Mark returns the mark of a consumed message (see the kafka adapter's
// rules: headers validated; a shadow-topic message without a run header is
// load-test traffic). Malformed headers are a [*shadow.Error] wrapping
// [shadow.ErrUnsupported].
func (s *Shadow) Mark(msg *sarama.ConsumerMessage) (propagation.Mark, error) {
	m, bad := headerMark(msg.Headers)
	if bad != "" {
		return propagation.Mark{}, shadow.Refuse(Store, msg.Topic, "malformed or conflicting "+bad+" header", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if m.Run == "" && s.c.topics.IsShadow(msg.Topic) {
		m.Run = s.c.fallbackRun
	}
	return m, nil
}

// Takes reports whether this instance's consumer of the production group
// takes a message marked m (lanes).
func (s *Shadow) Takes(group string, m propagation.Mark) bool {
	if s.c.env != "" {
		return m.Env == s.c.env
	}
	return m.Env == "" || s.c.lanes == nil || !s.c.lanes.HasLane(group, m.Env)
}

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
}

func (groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (g groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case <-sess.Context().Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			m, err := g.s.Mark(msg)
			if err != nil {
				prod, _ := g.s.c.topics.Production(msg.Topic)
				shadow.Record(Store, prod, shadow.Block)
				if f := g.s.c.refused; f != nil {
					if err := f(propagation.With(sess.Context(), propagation.Mark{}), msg, err); err != nil {
						return err
					}
				}
				sess.MarkMessage(msg, "")
				continue
			}
			if g.s.Takes(g.group, m) {
				if err := g.h(propagation.With(sess.Context(), m), msg); err != nil {
					return err
				}
			}
			sess.MarkMessage(msg, "")
		}
	}
}
