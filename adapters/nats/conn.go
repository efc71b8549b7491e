package nats

import (
	"context"
	"errors"

	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Prepare applies the publish rules to msg in place, using the mark of ctx:
//
//   - unmarked: msg keeps its subject and loses any mark headers it carries
//     (the env header is written for an env-only mark); an unmarked message
//     for a shadow subject is refused with [shadow.ErrShadowFromProduction].
//   - marked: msg's subject becomes its shadow twin and the mark headers are
//     written; a subject with no configured shadow twin is refused with
//     [shadow.ErrNoShadowTarget] and msg is left unchanged.
//
// Use it before publishing through any API, JetStream's included. The reply
// subject is never changed: replies go back to the requester's inbox.
func (s *Shadow) Prepare(ctx context.Context, msg *natsgo.Msg) error {
	m := propagation.FromContext(ctx)
	has := func(prod string) bool { return s.covered(prod) && literal(prod) }
	to, err := shadow.Route(Store, "subject", s.c.subjects, m, msg.Subject, has, func(n string) string { return metricTarget(s, n) })
	if err != nil {
		return err
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
	if msg.Header != nil {
		delete(msg.Header, HeaderRun)
		delete(msg.Header, headerRunLower)
		delete(msg.Header, HeaderEnv)
		delete(msg.Header, headerEnvLower)
	}
	env := m.Env != "" && propagation.ValidID(m.Env)
	if m.Run == "" && !env {
		return
	}
	if msg.Header == nil {
		msg.Header = natsgo.Header{}
	}
	if m.Run != "" {
		msg.Header[HeaderRun] = []string{m.Run}
	}
	if env {
		msg.Header[HeaderEnv] = []string{m.Env}
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
// [Shadow.Prepare]). An unmarked publish to a production subject is a plain
// nc.Publish: no message or header is built.
func (c *Conn) Publish(ctx context.Context, subj string, data []byte) error {
	if m := propagation.FromContext(ctx); m.IsZero() && !c.s.c.subjects.IsShadow(subj) {
		return c.nc.Publish(subj, data)
	}
	return c.PublishMsg(ctx, &natsgo.Msg{Subject: subj, Data: data})
}

// PublishMsg publishes msg under the mark of ctx (see [Shadow.Prepare]).
func (c *Conn) PublishMsg(ctx context.Context, msg *natsgo.Msg) error {
	if err := c.s.Prepare(ctx, msg); err != nil {
		return err
	}
	return c.nc.PublishMsg(msg)
}

// RequestMsg sends msg as a request under the mark of ctx and waits for the
// reply (nc.RequestMsgWithContext).
func (c *Conn) RequestMsg(ctx context.Context, msg *natsgo.Msg) (*natsgo.Msg, error) {
	if err := c.s.Prepare(ctx, msg); err != nil {
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
	if _, ok := tokens(subj); !ok || c.s.c.subjects.IsShadow(subj) {
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
	return func(msg *natsgo.Msg) {
		if !shadowSide && s.c.subjects.IsShadow(msg.Subject) {
			shadow.Record(Store, metricTarget(s, msg.Subject), shadow.Guard)
			return
		}
		m, err := s.Mark(msg.Subject, msg.Header)
		if err != nil {
			s.refuse(msg, err)
			return
		}
		if !s.Takes(lanesKey, m) {
			return
		}
		h(propagation.With(context.Background(), m), msg)
	}
}

func (s *Shadow) refuse(msg *natsgo.Msg, err error) {
	shadow.Record(Store, metricTarget(s, msg.Subject), shadow.Block)
	if s.c.refused != nil {
		s.c.refused(propagation.With(context.Background(), propagation.Mark{}), msg, err)
	}
}

// metricTarget is the low-cardinality counter target of a subject: the first
// token of its production subject (subjects often embed ids).
func metricTarget(s *Shadow, subj string) string {
	prod, _ := s.c.subjects.Production(subj)
	for i := 0; i < len(prod); i++ {
		if prod[i] == '.' {
			return prod[:i]
		}
	}
	return prod
}
