package slamqp

// Lanes on RabbitMQ: the trunk decides, the lane queue only holds what
// the trunk passed on (issue 16 item 4, issue 18's late and dropped lane
// orderings).
//
// A lane queue "<queue>-<env>" is not bound to any exchange. The trunk
// consumer reads the production queue; a message of env E while E has a
// live lane is passed on to E's lane queue (published through the default
// exchange, mandatory, and confirmed before the original is acknowledged)
// instead of being skipped. Each message is thus decided once, by the
// trunk, at the time it reads it: a late lane gets only what the trunk
// passed on after it saw the lane listed, never what the trunk handled
// before, and nothing is lost when the trunk reads a message published
// before the lane existed. When E leaves the lanes, the lane consumer hands
// back what it holds (nack with requeue) and stops; the trunk consumes E's
// lane queue (the hand-over) until E is listed again, so what the lane
// had not handled is handled once, by the trunk. A lane queue the trunk
// cannot reach (not declared: the mandatory publish is returned) leaves
// the message with the trunk.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/internal/tick"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Headers of a message the trunk passed on to a lane queue: the lane it
// was passed to, and where it was first delivered from (restored on the
// delivery the lane's or the hand-over's handler gets, then removed).
const (
	headerLane       = "x-shadowlane-lane"
	headerExchange   = "x-shadowlane-exchange"
	headerRoutingKey = "x-shadowlane-routing-key"
	headerUserID     = "x-shadowlane-user-id"
	// headerProbe marks the empty message a trunk sends to find out
	// whether a lane queue exists (consumers of lane queues acknowledge
	// it without handling it).
	headerProbe = "x-shadowlane-probe"
)

// errHandOverEnds stops a hand-over consumer whose lane is live again.
var errHandOverEnds = errors.New("slamqp: lane is live again")

// laneQueue returns the lane queue of env for a delivery from queue (the
// production queue prod or its shadow twin).
func (s *Shadow) laneQueueOf(queue, prod, env string) string {
	lq := bus.LaneNameFor(prod, env)
	if s.rq.IsShadow(queue) {
		return s.rq.ShadowName(lq)
	}
	return lq
}

// forwarding puts the channel in confirm mode (once) so the trunk can pass
// messages on to lane queues and know they arrived.
func (c *Channel) forwarding() error {
	c.fwdOnce.Do(func() {
		if c.ret != nil {
			return // WithConfirms did it
		}
		if err := c.sync(func() error { return c.ch.Confirm(false) }); err != nil {
			c.fwdErr = fmt.Errorf("%w: confirm mode for passing messages to lanes: %w", ErrNotConfirmed, err)
			return
		}
		c.ret = &returns{rc: c.ch.NotifyReturn(make(chan amqp091.Return, 64))}
		go c.ret.run()
	})
	return c.fwdErr
}

// forwardCopy is the publishing that passes d on to env's lane queue.
func forwardCopy(d *amqp091.Delivery, env string) amqp091.Publishing {
	h := make(amqp091.Table, len(d.Headers)+4)
	maps.Copy(h, d.Headers)
	h[headerLane] = env
	h[headerExchange] = d.Exchange
	h[headerRoutingKey] = d.RoutingKey
	if d.UserId != "" {
		h[headerUserID] = d.UserId // the broker checks UserId against the publisher
	}
	return amqp091.Publishing{
		Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: d.DeliveryMode, Priority: d.Priority, CorrelationId: d.CorrelationId,
		ReplyTo: d.ReplyTo, Expiration: d.Expiration, MessageId: d.MessageId,
		Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
	}
}

// restore turns a delivery of a passed-on copy back into the delivery the
// trunk got (exchange, routing key, user id) and removes the pass-on
// headers; false when d was not passed on to a lane.
func restore(d *amqp091.Delivery) bool {
	if _, ok := d.Headers[headerLane].(string); !ok {
		return false
	}
	d.Exchange, _ = d.Headers[headerExchange].(string)
	d.RoutingKey, _ = d.Headers[headerRoutingKey].(string)
	if u, ok := d.Headers[headerUserID].(string); ok {
		d.UserId = u
	}
	for _, k := range []string{headerLane, headerExchange, headerRoutingKey, headerUserID} {
		delete(d.Headers, k)
	}
	return true
}

// forward passes d on to its env's lane queue and acknowledges it; when
// the lane queue is missing (the publish is returned) the trunk handles d
// itself; when the broker does not confirm, d is handed back. A stop (ctx)
// does not cut a pass-on short: d is settled either way, never left
// unacknowledged on a channel that stays open (lost to every other
// consumer), and never both passed on and handed back (handled twice).
func (sb *sub) forward(ctx context.Context, d *amqp091.Delivery, dec bus.Decision, h Handler) error {
	c := sb.c
	lq := c.s.laneQueueOf(sb.queue, sb.prod, dec.Mark.Env)
	pub := forwardCopy(d, dec.Mark.Env)
	dc, err := c.ch.PublishWithDeferredConfirm("", lq, true, false, pub)
	if err == nil && dc == nil {
		err = fmt.Errorf("%w: channel not in confirm mode", ErrNotConfirmed)
	}
	if err != nil {
		return errors.Join(err, d.Nack(false, true)) // not passed on: taken again
	}
	if !confirmed(ctx, dc) {
		if ctx.Err() == nil {
			sb.pause(ctx, 1)
		}
		return d.Nack(false, true) // not passed on: taken again
	}
	if _, returned := c.ret.claim("", lq, &pub); returned {
		dec.Action = bus.Handle // no lane queue: the trunk keeps it
		return sb.handle(ctx, d, dec, h)
	}
	sb.lanes.passed(lq, dec.Mark.Env)
	c.s.obs.Forwarded()
	return d.Ack(false)
}

// confirmGrace bounds how long a stopping trunk still waits for the
// broker's confirmation of a message it passed on before the stop.
const confirmGrace = 5 * time.Second

// confirmed waits for the broker's answer to a publish: true when it
// confirmed it. Once ctx ends it waits at most [confirmGrace] more: on an
// open channel the answer is on its way, and a delivery handed back
// after its copy arrived would be handled twice.
func confirmed(ctx context.Context, dc *amqp091.DeferredConfirmation) bool {
	ok, err := dc.WaitContext(ctx)
	if err == nil {
		return ok
	}
	t := time.NewTimer(confirmGrace)
	defer t.Stop()
	select {
	case <-dc.Done():
		return dc.Acked()
	case <-t.C:
		return false
	}
}

// pause waits a short, growing time (n failures so far) or until ctx ends.
func (sb *sub) pause(ctx context.Context, n int) {
	t := time.NewTimer(time.Duration(min(1<<min(n, 6), 20)) * 25 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// laneQueues is what a Shadow's trunk consumers know of lane queues: the
// ones messages were passed on to or a probe found (by env), and the ones
// a probe found missing. It outlives a Consume, so a trunk consumer that
// is restarted in the same process hands over what its predecessor passed
// on.
type laneQueues struct {
	mu     sync.Mutex
	envOf  map[string]string // lane queue -> env
	absent map[string]bool   // lane queues a probe found missing
}

// laneSet is a trunk Consume's view of the lane queues and the hand-over
// consumers it runs on them.
type laneSet struct {
	*laneQueues
	hmu     sync.Mutex
	handing map[string]context.CancelFunc // lane queue -> its hand-over consumer
}

// known reports whether lq was passed on to or probed already.
func (l *laneQueues) known(lq string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.envOf[lq]
	return ok || l.absent[lq]
}

func (l *laneQueues) missing(lq string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.absent == nil {
		l.absent = map[string]bool{}
	}
	l.absent[lq] = true
}

// queues returns the known lane queues and their envs.
func (l *laneQueues) queues() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.envOf)
}

// probe finds out, once per Consume, whether env's lane queues (for the
// production queue and its shadow twin) exist, when the trunk handles an
// env message without having passed any on: a lane dropped before this
// trunk started (or while it was down) may have left a backlog there,
// which the hand-over then takes.
func (sb *sub) probe(ctx context.Context, env string) error {
	s := sb.c.s
	lqs := []string{bus.LaneNameFor(sb.prod, env)}
	if s.hasQueue(sb.prod) {
		lqs = append(lqs, s.rq.ShadowName(lqs[0]))
	}
	for _, lq := range lqs {
		if sb.lanes.known(lq) {
			continue
		}
		pub := amqp091.Publishing{Headers: amqp091.Table{headerProbe: env}, MessageId: "shadowlane-probe-" + consumerTag()}
		dc, err := sb.c.ch.PublishWithDeferredConfirm("", lq, true, false, pub)
		if err != nil {
			return err
		}
		if dc == nil {
			return fmt.Errorf("%w: channel not in confirm mode", ErrNotConfirmed)
		}
		if !confirmed(ctx, dc) {
			continue // tried again with the next message of env
		}
		if _, returned := sb.c.ret.claim("", lq, &pub); returned {
			sb.lanes.missing(lq)
		} else {
			sb.lanes.passed(lq, env)
		}
	}
	return nil
}

func (l *laneQueues) passed(lq, env string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.envOf == nil {
		l.envOf = map[string]string{}
	}
	l.envOf[lq] = env
	delete(l.absent, lq)
}

// laneQueuesOf returns the lane queue knowledge of the trunk consumers of
// the production queue prod.
func (s *Shadow) laneQueuesOf(prod string) *laneQueues {
	s.lqMu.Lock()
	defer s.lqMu.Unlock()
	if s.lq == nil {
		s.lq = map[string]*laneQueues{}
	}
	l := s.lq[prod]
	if l == nil {
		l = &laneQueues{}
		s.lq[prod] = l
	}
	return l
}

// watch runs until ctx ends: every few polls it starts a hand-over
// consumer on the lane queue of every env that left the lanes, and stops
// the hand-over of every env that is listed again.
func (c *Channel) watchLanes(ctx context.Context, prod string, l *laneSet, h Handler, wg *sync.WaitGroup, fail func(error)) {
	tick.Every(ctx, 4*c.s.c.poll, func() bool { return c.checkLanes(ctx, prod, l, h, wg, fail) })
}

// checkLanes is one check of watchLanes; false when a hand-over consumer
// could not start (fail was told).
func (c *Channel) checkLanes(ctx context.Context, prod string, l *laneSet, h Handler, wg *sync.WaitGroup, fail func(error)) bool {
	l.hmu.Lock()
	for lq, env := range l.queues() {
		listed := !c.s.rq.Takes(prod, propagation.Mark{Env: env})
		cancel, running := l.handing[lq]
		switch {
		case listed && running:
			cancel()
			delete(l.handing, lq)
		case !listed && !running:
			if l.handing == nil {
				l.handing = map[string]context.CancelFunc{}
			}
			hctx, hcancel := context.WithCancel(ctx)
			sb := &sub{c: c, prod: prod, queue: lq, tries: map[string]int{}, handover: env}
			if err := sb.start(); err != nil {
				hcancel()
				l.hmu.Unlock()
				fail(err)
				return false
			}
			l.handing[lq] = hcancel
			wg.Go(func() {
				err := sb.run(hctx, h)
				if herr := sb.handBack(); herr != nil && !errors.Is(herr, amqp091.ErrClosed) && err == nil {
					err = herr
				}
				l.hmu.Lock()
				if l.handing[lq] != nil && hctx.Err() == nil {
					delete(l.handing, lq)
				}
				l.hmu.Unlock()
				hcancel()
				if err != nil && !errors.Is(err, errHandOverEnds) {
					fail(err)
				}
			})
		}
	}
	l.hmu.Unlock()
	return true
}
