package nats

import (
	"context"
	"fmt"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// StreamName returns the shadow name of a JetStream stream or consumer
// (default: name + "_shadow").
func (s *Shadow) StreamName(name string) string { return s.c.names.Shadow(name) }

// ShadowStream derives the shadow twin of a production stream
// configuration: the name is shadowed and every subject becomes its shadow
// subject. Every subject must lie inside the configured shadow subjects
// ([shadow.ErrNoShadowTarget] otherwise); mirrors, sources, subject
// transforms and republish are refused ([shadow.ErrUnsupported]) because
// they could pull production data into the shadow stream or push shadow
// data out of it.
func (s *Shadow) ShadowStream(cfg jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	if cfg.Name == "" || s.c.names.IsShadow(cfg.Name) {
		return cfg, shadow.Refuse(Store, cfg.Name, "stream name is empty or already a shadow name", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if cfg.Mirror != nil || len(cfg.Sources) > 0 || cfg.SubjectTransform != nil || cfg.RePublish != nil {
		return cfg, shadow.Refuse(Store, cfg.Name, "streams with mirror, sources, subject transform or republish are not shadowed", propagation.Mark{}, shadow.ErrUnsupported)
	}
	out := cfg
	out.Name = s.c.names.Shadow(cfg.Name)
	out.Subjects = make([]string, len(cfg.Subjects))
	for i, subj := range cfg.Subjects {
		st, ok := s.ShadowSubject(subj)
		if !ok {
			return cfg, shadow.Refuse(Store, subj, "no shadow subject configured for stream "+cfg.Name, propagation.Mark{}, shadow.ErrNoShadowTarget)
		}
		out.Subjects[i] = st
	}
	return out, nil
}

// CreateShadowStream reads the production stream's configuration and
// creates or updates its shadow twin (see [Shadow.ShadowStream]).
func (s *Shadow) CreateShadowStream(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := s.ShadowStream(info.Config)
	if err != nil {
		return nil, err
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

// consumerConfigs returns the production (lane-named) consumer config and
// its shadow twin; hasShadow is false when a filter subject has no shadow
// twin (or, without filters, one of streamSubjects has none).
func (s *Shadow) consumerConfigs(cfg jetstream.ConsumerConfig, streamSubjects []string) (prod, sh jetstream.ConsumerConfig, hasShadow bool, err error) {
	if cfg.DeliverSubject != "" || cfg.DeliverGroup != "" {
		return cfg, cfg, false, fmt.Errorf("%w: push consumers (DeliverSubject) are not supported; use pull consumers", ErrConfig)
	}
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	if name == "" || s.c.names.IsShadow(name) {
		return cfg, cfg, false, fmt.Errorf("%w: consumer needs a durable name that is not a shadow name (got %q)", ErrConfig, name)
	}
	prod = cfg
	setName(&prod, s.laneName(name))
	sh = prod
	setName(&sh, s.c.names.Shadow(s.laneName(name)))
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	check := filters
	if len(check) == 0 {
		check = streamSubjects
	}
	hasShadow = len(check) > 0
	for _, f := range check {
		if _, ok := s.ShadowSubject(f); !ok {
			hasShadow = false
		}
	}
	if hasShadow && len(filters) > 0 {
		sh.FilterSubject, sh.FilterSubjects = "", make([]string, len(filters))
		for i, f := range filters {
			sh.FilterSubjects[i], _ = s.ShadowSubject(f)
		}
		if len(filters) == 1 {
			sh.FilterSubject, sh.FilterSubjects = sh.FilterSubjects[0], nil
		}
	}
	return prod, sh, hasShadow, nil
}

func setName(c *jetstream.ConsumerConfig, n string) {
	if c.Durable != "" {
		c.Durable = n
	}
	if c.Name != "" {
		c.Name = n
	}
}

// JSHandler handles one JetStream message; ctx carries its mark. Returning
// nil acknowledges the message, an error naks it for redelivery.
type JSHandler func(ctx context.Context, msg jetstream.Msg) error

// Consumption is a running production consumer and, when configured, its
// shadow twin.
type Consumption struct {
	ctxs []jetstream.ConsumeContext
	// Consumers are the names of the durable consumers, production first.
	Consumers []string
}

// Stop stops consuming.
func (c *Consumption) Stop() {
	for _, cc := range c.ctxs {
		cc.Stop()
	}
}

// ConsumeJetStream creates (or updates) the pull consumer cfg on stream and
// consumes it with h. A lane instance ([WithEnv]) names its consumer
// "<durable>-<env>". When the consumer's filter subjects (or, without
// filters, the stream's subjects) all have shadow twins, the shadow consumer
// (shadow name, shadow filters) is created on the shadow stream, which must
// exist (see [Shadow.CreateShadowStream]), and consumed with the same h.
//
// Each message's mark comes from its headers (a shadow-stream message
// without a run header is still load-test traffic). Malformed mark headers
// terminate the message (counted, never handled, passed to [WithRefused]);
// messages another environment's lane takes are acknowledged and skipped.
func (s *Shadow) ConsumeJetStream(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, h JSHandler) (*Consumption, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrConfig)
	}
	if s.c.names.IsShadow(stream) {
		return nil, fmt.Errorf("%w: stream %q is a shadow stream; consume the production stream", ErrConfig, stream)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	prod, sh, hasShadow, err := s.consumerConfigs(cfg, info.Config.Subjects)
	if err != nil {
		return nil, err
	}
	lanesKey := cfg.Durable
	if lanesKey == "" {
		lanesKey = cfg.Name
	}
	out := &Consumption{}
	start := func(stream string, cc jetstream.ConsumerConfig, shadowSide bool) error {
		cons, err := js.CreateOrUpdateConsumer(ctx, stream, cc)
		if err != nil {
			return err
		}
		run, err := cons.Consume(s.jsHandler(lanesKey, shadowSide, h))
		if err != nil {
			return err
		}
		out.ctxs = append(out.ctxs, run)
		out.Consumers = append(out.Consumers, cons.CachedInfo().Name)
		return nil
	}
	if err := start(stream, prod, false); err != nil {
		return nil, err
	}
	if hasShadow {
		if err := start(s.c.names.Shadow(stream), sh, true); err != nil {
			out.Stop()
			return nil, err
		}
	}
	return out, nil
}

func (s *Shadow) jsHandler(lanesKey string, shadowSide bool, h JSHandler) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		subj := msg.Subject()
		if !shadowSide && s.c.subjects.IsShadow(subj) {
			shadow.Record(Store, metricTarget(s, subj), shadow.Guard)
			_ = msg.Term()
			return
		}
		m, err := s.Mark(subj, msg.Headers())
		if err != nil {
			s.refuse(&natsgo.Msg{Subject: subj, Header: msg.Headers(), Data: msg.Data()}, err)
			_ = msg.Term()
			return
		}
		if !s.Takes(lanesKey, m) {
			_ = msg.Ack()
			return
		}
		if err := h(propagation.With(context.Background(), m), msg); err != nil {
			_ = msg.Nak()
			return
		}
		_ = msg.Ack()
	}
}
