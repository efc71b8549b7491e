package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Prepare applies the publish rules for a publish of msg to exchange with
// routing key under the mark of ctx, and returns the exchange and key to
// publish to. msg.Headers is replaced by a copy when it must change, so the
// caller's table is never modified.
//
//   - unmarked: exchange and key are kept; stale mark headers are removed
//     (the env header is written for an env-only mark). Publishing to a
//     shadow exchange, or through the default exchange to a shadow queue,
//     is refused with [shadow.ErrShadowFromProduction].
//   - marked: the exchange becomes its shadow twin; through the default
//     exchange ("") the routing key (a queue name) becomes the shadow
//     queue. Without a configured twin the publish is refused with
//     [shadow.ErrNoShadowTarget]. The mark headers are written.
func (s *Shadow) Prepare(ctx context.Context, exchange, key string, msg *amqp091.Publishing) (string, string, error) {
	m := propagation.FromContext(ctx)
	target := exchange
	if exchange == "" {
		target = key
	}
	kind, has := "exchange", s.hasExchange
	if exchange == "" {
		kind, has = "queue", s.hasQueue
	}
	to, err := shadow.Route(Store, kind, s.c.naming, m, target, has, nil)
	if err != nil {
		return "", "", err
	}
	if exchange == "" {
		key = to
	} else {
		exchange = to
	}
	setHeaders(msg, m)
	return exchange, key, nil
}

func setHeaders(msg *amqp091.Publishing, m propagation.Mark) {
	env := m.Env != "" && propagation.ValidID(m.Env)
	stale := false
	for k := range msg.Headers {
		if strings.EqualFold(k, HeaderRun) || strings.EqualFold(k, HeaderEnv) {
			stale = true
			break
		}
	}
	if !stale && m.Run == "" && !env {
		return
	}
	t := make(amqp091.Table, len(msg.Headers)+2)
	for k, v := range msg.Headers {
		if !strings.EqualFold(k, HeaderRun) && !strings.EqualFold(k, HeaderEnv) {
			t[k] = v
		}
	}
	if m.Run != "" {
		t[HeaderRun] = m.Run
	}
	if env {
		t[HeaderEnv] = m.Env
	}
	msg.Headers = t
}

// Channel wraps an amqp091-go channel so that publishes and consumers
// follow shadowlane's rules.
type Channel struct {
	s  *Shadow
	ch *amqp091.Channel
}

// Channel wraps ch.
func (s *Shadow) Channel(ch *amqp091.Channel) *Channel { return &Channel{s: s, ch: ch} }

// AMQP returns the wrapped channel.
func (c *Channel) AMQP() *amqp091.Channel { return c.ch }

// PublishWithContext is amqp091's PublishWithContext with the rules of
// [Shadow.Prepare]; a refused publish is a [*shadow.Error] and sends nothing.
func (c *Channel) PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp091.Publishing) error {
	exchange, key, err := c.s.Prepare(ctx, exchange, key, &msg)
	if err != nil {
		return err
	}
	return c.ch.PublishWithContext(ctx, exchange, key, mandatory, immediate, msg)
}

// Mark returns the mark of a delivery from queue: its headers, validated,
// or for a delivery from a shadow queue without a run header the fallback
// run. Malformed headers are a [*shadow.Error] wrapping
// [shadow.ErrUnsupported].
func (s *Shadow) Mark(queue string, headers amqp091.Table) (propagation.Mark, error) {
	m, bad := tableMark(headers)
	if bad != "" {
		return propagation.Mark{}, shadow.Refuse(Store, queue, "malformed or conflicting "+bad+" header", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if m.Run == "" && s.c.naming.IsShadow(queue) {
		m.Run = s.c.fallbackRun
	}
	return m, nil
}

// Takes reports whether a consumer of this Shadow's environment for the
// production queue takes a message marked m.
func (s *Shadow) Takes(queue string, m propagation.Mark) bool {
	if s.c.env != "" {
		return m.Env == s.c.env
	}
	return m.Env == "" || s.c.lanes == nil || !s.c.lanes.HasLane(queue, m.Env)
}

// Queues returns the queues [Channel.Consume] reads for the production
// queue: the (lane) queue and, when configured, its shadow twin.
func (s *Shadow) Queues(queue string) []string {
	q := []string{s.laneQueue(queue)}
	if s.hasQueue(queue) {
		q = append(q, s.c.naming.Shadow(s.laneQueue(queue)))
	}
	return q
}

// Consume consumes the production queue (for a lane instance
// "<queue>-<env>") and, when the queue has a shadow twin, the shadow queue,
// with manual acknowledgements, until ctx is done (it then cancels the
// consumers and returns nil) or the channel closes (it returns an error).
// The handler's nil acks a delivery, an error nacks it with requeue. A
// delivery with malformed mark headers is never handled: it is counted and
// nacked without requeue (dead-lettered when the queue has a dead-letter
// exchange; see [WithRequeueRefused]). A lane's or another lane's message is
// acked and skipped. A shadow queue name is refused: production consumers
// never read shadow queues.
func (c *Channel) Consume(ctx context.Context, queue string, h Handler) error {
	if h == nil || queue == "" || c.s.c.naming.IsShadow(queue) {
		return fmt.Errorf("%w: consume needs a handler and a production queue (got %q)", ErrConfig, queue)
	}
	type sub struct {
		queue, tag string
		ds         <-chan amqp091.Delivery
	}
	var subs []sub
	cancelAll := func() {
		for _, s := range subs {
			_ = c.ch.Cancel(s.tag, false)
		}
	}
	for _, q := range c.s.Queues(queue) {
		tag := consumerTag()
		ds, err := c.ch.Consume(q, tag, false, false, false, false, nil)
		if err != nil {
			cancelAll()
			return err
		}
		subs = append(subs, sub{q, tag, ds})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, sb := range subs {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-sb.ds:
					if !ok {
						if ctx.Err() == nil {
							mu.Lock()
							errs = append(errs, fmt.Errorf("shadowlane/amqp: deliveries of %q closed: %w", sb.queue, amqp091.ErrClosed))
							mu.Unlock()
						}
						return
					}
					if err := c.s.deliver(ctx, queue, sb.queue, &d, h); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	cancelAll()
	return errors.Join(errs...)
}

// deliver handles one delivery; it returns only acknowledgement errors.
func (s *Shadow) deliver(ctx context.Context, prodQueue, fromQueue string, d *amqp091.Delivery, h Handler) error {
	m, err := s.Mark(fromQueue, d.Headers)
	if err != nil {
		shadow.Record(Store, prodQueue, shadow.Block)
		if s.c.refused != nil {
			s.c.refused(propagation.With(ctx, propagation.Mark{}), d, err)
		}
		return d.Nack(false, s.c.requeueBad)
	}
	if !s.Takes(prodQueue, m) {
		return d.Ack(false)
	}
	if err := h(propagation.With(ctx, m), d); err != nil {
		return d.Nack(false, true)
	}
	return d.Ack(false)
}

func consumerTag() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "shadowlane-" + hex.EncodeToString(b)
}

// Exchange, Queue and Binding describe production topology for
// [Shadow.Declare].
type (
	Exchange struct {
		Name, Kind                    string
		Durable, AutoDelete, Internal bool
		Args                          amqp091.Table
	}
	Queue struct {
		Name                           string
		Durable, AutoDelete, Exclusive bool
		Args                           amqp091.Table
	}
	Binding struct {
		Queue, Exchange, Key string
		Args                 amqp091.Table
	}
	// Topology is a set of exchanges, queues and bindings.
	Topology struct {
		Exchanges []Exchange
		Queues    []Queue
		Bindings  []Binding
	}
)

// redirecting arguments: an exchange or queue argument naming another
// exchange, which a shadow twin must name the shadow twin of.
var exchangeArgs = []string{"x-dead-letter-exchange", "alternate-exchange"}

// LaneTopology returns t with, for a lane instance, every queue copied to
// "<queue>-<env>" with the same bindings; for the trunk it returns t.
func (s *Shadow) LaneTopology(t Topology) Topology {
	if s.c.env == "" {
		return t
	}
	out := Topology{Exchanges: t.Exchanges}
	for _, q := range t.Queues {
		out.Queues = append(out.Queues, q)
		lq := q
		lq.Name = s.laneQueue(q.Name)
		out.Queues = append(out.Queues, lq)
	}
	for _, b := range t.Bindings {
		out.Bindings = append(out.Bindings, b)
		lb := b
		lb.Queue = s.laneQueue(b.Queue)
		out.Bindings = append(out.Bindings, lb)
	}
	return out
}

// ShadowTopology derives the shadow twins of the configured exchanges and
// queues of t and the bindings between twins. Entities without a configured
// twin are left out (nothing marked is ever routed to them). An argument
// that routes to another exchange (dead-letter, alternate exchange) must
// name an exchange with a twin, or the error wraps
// [shadow.ErrNoShadowTarget]: a shadow queue must never dead-letter into
// production.
func (s *Shadow) ShadowTopology(t Topology) (Topology, error) {
	var out Topology
	args := func(owner string, a amqp091.Table) (amqp091.Table, error) {
		if a == nil {
			return nil, nil
		}
		a = maps.Clone(a)
		for _, k := range exchangeArgs {
			v, present := a[k]
			if !present {
				continue
			}
			ex, _ := v.(string)
			if ex == "" || !s.hasExchange(ex) {
				return nil, shadow.Refuse(Store, owner, fmt.Sprintf("argument %s names %v, which has no shadow exchange", k, v), propagation.Mark{}, shadow.ErrNoShadowTarget)
			}
			a[k] = s.c.naming.Shadow(ex)
		}
		return a, nil
	}
	for _, e := range t.Exchanges {
		if !s.hasExchange(e.Name) {
			continue
		}
		se := e
		se.Name = s.c.naming.Shadow(e.Name)
		var err error
		if se.Args, err = args(e.Name, e.Args); err != nil {
			return Topology{}, err
		}
		out.Exchanges = append(out.Exchanges, se)
	}
	queueOK := func(q string) (string, bool) {
		prod := strings.TrimSuffix(q, "-"+s.c.env)
		if s.c.env == "" {
			prod = q
		}
		return s.c.naming.Shadow(q), s.hasQueue(prod) || s.hasQueue(q)
	}
	for _, q := range t.Queues {
		name, ok := queueOK(q.Name)
		if !ok {
			continue
		}
		sq := q
		sq.Name = name
		var err error
		if sq.Args, err = args(q.Name, q.Args); err != nil {
			return Topology{}, err
		}
		out.Queues = append(out.Queues, sq)
	}
	for _, b := range t.Bindings {
		qn, ok := queueOK(b.Queue)
		if !ok || !s.hasExchange(b.Exchange) {
			continue
		}
		out.Bindings = append(out.Bindings, Binding{Queue: qn, Exchange: s.c.naming.Shadow(b.Exchange), Key: b.Key, Args: b.Args})
	}
	return out, nil
}

// Declare declares the production topology t (with this instance's lane
// queues when [WithEnv] is set) and its shadow twins on ch. Nothing is
// declared when the shadow topology cannot be derived.
func (s *Shadow) Declare(ch *amqp091.Channel, t Topology) error {
	t = s.LaneTopology(t)
	st, err := s.ShadowTopology(t)
	if err != nil {
		return err
	}
	for _, top := range []Topology{t, st} {
		for _, e := range top.Exchanges {
			if err := ch.ExchangeDeclare(e.Name, e.Kind, e.Durable, e.AutoDelete, e.Internal, false, e.Args); err != nil {
				return err
			}
		}
		for _, q := range top.Queues {
			if _, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, q.Args); err != nil {
				return err
			}
		}
		for _, b := range top.Bindings {
			if err := ch.QueueBind(b.Queue, b.Key, b.Exchange, false, b.Args); err != nil {
				return err
			}
		}
	}
	return nil
}
