package slnats

import (
	"context"
	"errors"

	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// prepare applies the publish rules to msg in place, using the mark of ctx:
//
//   - unmarked: msg keeps its subject and loses any mark headers it carries
//     (the env header is written for an env-only mark); an unmarked message
//     for a shadow subject is refused with [shadow.ErrShadowFromProduction],
//     one whose subject or headers look like load-test data with
//     [shadow.ErrLostMark] (config testData:, the lost-mark guard).
//   - marked: msg's subject becomes its shadow twin and the mark headers are
//     written; a subject with no configured shadow twin is refused with
//     [shadow.ErrNoShadowTarget] and msg is left unchanged.
//
// It is applied by every publish of [Conn] and [JetStream]: there is no
// separate step to forget. The reply subject is never changed: replies go
// back to the requester's inbox.
func (s *Shadow) prepare(ctx context.Context, msg *natsgo.Msg) error {
	m := propagation.FromContext(ctx)
	if m.Run != "" && !literal(msg.Subject) {
		s.decisions().Record(m.Run, Store, firstToken(s.r.Production(msg.Subject)), shadow.Block)
		return shadow.Refuse(Store, msg.Subject, "a message needs a literal subject", m, shadow.ErrUnsupported)
	}
	to, err := s.r.Produce(m, msg.Subject)
	if err != nil {
		return err
	}
	if td := s.testData(); td != nil && m.Run == "" {
		if err := s.lostMark(td, msg.Subject, msg.Header); err != nil { // lostmark.go (testData:)
			return err
		}
	}
	msg.Subject = to
	setHeaders(msg, m)
	return nil
}

// literal reports whether subj has no wildcard token.
func literal(subj string) bool {
	for i := 0; i < len(subj); i++ {
		if (subj[i] == '*' || subj[i] == '>') && (i == 0 || subj[i-1] == '.') && (i == len(subj)-1 || subj[i+1] == '.') {
			return false
		}
	}
	return true
}

func setHeaders(msg *natsgo.Msg, m propagation.Mark) {
	for k := range msg.Header {
		if bus.IsMarkHeader(k) {
			delete(msg.Header, k)
		}
	}
	run, env := bus.Values(m)
	if run == "" && env == "" {
		return
	}
	if msg.Header == nil {
		msg.Header = natsgo.Header{}
	}
	if run != "" {
		msg.Header[bus.HeaderRun] = []string{run}
	}
	if env != "" {
		msg.Header[bus.HeaderEnv] = []string{env}
	}
}

// Conn wraps a NATS connection so that publishes, requests and
// subscriptions follow shadowlane's rules.
type Conn struct {
	s  *Shadow
	nc *natsgo.Conn
}

// Conn wraps nc.
func (s *Shadow) Conn(nc *natsgo.Conn) *Conn { return &Conn{s: s, nc: nc} }

// NATS returns the wrapped connection.
func (c *Conn) NATS() *natsgo.Conn { return c.nc }

// Publish publishes data to subj under the mark of ctx (see
// the publish rules). An unmarked publish to a production subject is a plain
// nc.Publish: no message or header is built.
func (c *Conn) Publish(ctx context.Context, subj string, data []byte) error {
	if m := propagation.FromContext(ctx); m.IsZero() && !c.s.r.IsShadow(subj) {
		if td := c.s.testData(); td != nil {
			if err := c.s.lostMark(td, subj, nil); err != nil { // lostmark.go (testData:)
				return err
			}
		}
		return c.nc.Publish(subj, data)
	}
	return c.PublishMsg(ctx, &natsgo.Msg{Subject: subj, Data: data})
}

// PublishMsg publishes msg under the mark of ctx (see the publish rules).
func (c *Conn) PublishMsg(ctx context.Context, msg *natsgo.Msg) error {
	if err := c.s.prepare(ctx, msg); err != nil {
		return err
	}
	err := c.nc.PublishMsg(msg)
	if err != nil {
		c.s.obs.PublishFailed(ctx, err)
	}
	return err
}

// RequestMsg sends msg as a request under the mark of ctx and waits for the
// reply (nc.RequestMsgWithContext).
func (c *Conn) RequestMsg(ctx context.Context, msg *natsgo.Msg) (*natsgo.Msg, error) {
	if err := c.s.prepare(ctx, msg); err != nil {
		return nil, err
	}
	return c.nc.RequestMsgWithContext(ctx, msg)
}

// Subscription is a production subscription and, when the subject has a
// shadow twin, the shadow subscription beside it.
type Subscription struct {
	Production *natsgo.Subscription
	Shadow     *natsgo.Subscription // nil when the subject has no shadow twin
}

// Unsubscribe removes both subscriptions.
func (s *Subscription) Unsubscribe() error {
	return s.each((*natsgo.Subscription).Unsubscribe)
}

// Drain drains both subscriptions.
func (s *Subscription) Drain() error { return s.each((*natsgo.Subscription).Drain) }

func (s *Subscription) each(f func(*natsgo.Subscription) error) error {
	var errs []error
	for _, sub := range []*natsgo.Subscription{s.Production, s.Shadow} {
		if sub != nil {
			errs = append(errs, f(sub))
		}
	}
	return errors.Join(errs...)
}

// Subscribe subscribes h to subj and, when subj lies inside the configured
// shadow subjects, to its shadow twin; h gets each message's mark in ctx.
// subj must be a production subject (a shadow subject is refused with
// [ErrConfig]); a production wildcard subscription never hands h a message
// published on a shadow subject (it is counted as a guard and dropped).
func (c *Conn) Subscribe(subj string, h Handler) (*Subscription, error) {
	return c.subscribe(subj, "", h)
}

// QueueSubscribe is Subscribe in a queue group. A lane instance
// ([WithEnv]) joins "<queue>-<env>"; the shadow subscription joins the
// shadow name of that queue.
func (c *Conn) QueueSubscribe(subj, queue string, h Handler) (*Subscription, error) {
	if queue == "" {
		return nil, errors.Join(ErrConfig, errors.New("empty queue group"))
	}
	return c.subscribe(subj, queue, h)
}

func (c *Conn) subscribe(subj, queue string, h Handler) (*Subscription, error) {
	if h == nil {
		return nil, errors.Join(ErrConfig, errors.New("nil handler"))
	}
	if _, ok := tokens(subj); !ok || c.s.r.IsShadow(subj) {
		return nil, errors.Join(ErrConfig, errors.New("subject "+subj+" is invalid or a shadow subject; subscribe to production subjects"))
	}
	if queue != "" && c.s.c.queues.IsShadow(queue) {
		return nil, errors.Join(ErrConfig, errors.New("queue group "+queue+" is a shadow name"))
	}
	lanesKey := subj
	if queue != "" {
		lanesKey = queue
	}
	q := c.s.laneName(queue)
	out := &Subscription{}
	var err error
	out.Production, err = c.nc.QueueSubscribe(subj, q, c.s.msgHandler(lanesKey, false, h))
	if err != nil {
		return nil, err
	}
	if st, ok := c.s.ShadowSubject(subj); ok {
		sq := q
		if q != "" {
			sq = c.s.c.queues.Shadow(q)
		}
		out.Shadow, err = c.nc.QueueSubscribe(st, sq, c.s.msgHandler(lanesKey, true, h))
		if err != nil {
			out.Production.Unsubscribe()
			return nil, err
		}
	}
	return out, nil
}

func (s *Shadow) msgHandler(lanesKey string, shadowSide bool, h Handler) natsgo.MsgHandler {
	prod := propagation.With(context.Background(), propagation.Mark{}) // every production message's handler context, built once
	return func(msg *natsgo.Msg) {
		if !shadowSide && s.r.IsShadow(msg.Subject) {
			s.decisions().Record("", Store, metricTarget(s, msg.Subject), shadow.Guard)
			return
		}
		d := decode(msg.Header)
		dec := s.r.Consume(lanesKey, msg.Subject, &d)
		switch dec.Action {
		case bus.Skip:
		case bus.Refuse:
			s.refuse(context.Background(), msg, dec.Err)
		case bus.Wait:
			// Core NATS cannot hold a message back: a message the kill
			// switch stops is refused (counted), never handled.
			if errors.Is(dec.Err, shadow.ErrKillSwitch) {
				s.decisions().Record(dec.Mark.Run, Store, metricTarget(s, msg.Subject), shadow.Block)
				s.refuse(context.Background(), msg, dec.Err)
			}
		case bus.Handle:
			mctx := prod
			if !dec.Mark.IsZero() {
				mctx = propagation.With(context.Background(), dec.Mark)
			}
			if dec.Mark.Run != "" { // evidence counts marked work only: skip the target for production
				s.obs.Entry(mctx, metricTarget(s, msg.Subject), lanesKey)
			}
			h(mctx, msg)
		}
	}
}

func (s *Shadow) refuse(ctx context.Context, msg *natsgo.Msg, err error) {
	if s.c.refused != nil {
		s.c.refused(propagation.With(ctx, propagation.Mark{}), msg, err)
	}
}

// metricTarget is the low-cardinality counter target of a subject: the first
// token of its production subject.
func metricTarget(s *Shadow, subj string) string { return firstToken(s.r.Production(subj)) }
