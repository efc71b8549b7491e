package slamqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Prepare applies the publish rules for a publish of msg to exchange with
// routing key under the mark of ctx, and returns the exchange and key to
// publish to. msg.Headers is replaced by a copy when it must change, so the
// caller's table is never modified.
//
//   - unmarked: exchange and key are kept; stale mark headers are removed
//     (the env header is written for an env-only mark). Publishing to a
//     shadow exchange, or through the default exchange to a shadow queue,
//     is refused with [shadow.ErrShadowFromProduction]. A publish whose
//     routing key, message id, correlation id or headers look like
//     load-test data is refused with [shadow.ErrLostMark] (config
//     testData:, the lost-mark guard).
//   - marked: the exchange becomes its shadow twin; through the default
//     exchange ("") the routing key (a queue name) becomes the shadow
//     queue. Without a configured twin the publish is refused with
//     [shadow.ErrNoShadowTarget]. The mark headers are written.
func (s *Shadow) Prepare(ctx context.Context, exchange, key string, msg *amqp091.Publishing) (string, string, error) {
	m := propagation.FromContext(ctx)
	if exchange == "" {
		to, err := s.rq.Produce(m, key)
		if err != nil {
			return "", "", err
		}
		key = to
	} else {
		to, err := s.rx.Produce(m, exchange)
		if err != nil {
			return "", "", err
		}
		exchange = to
	}
	if td := s.testData(); td != nil && m.Run == "" {
		if err := s.lostMark(td, exchange, key, msg); err != nil { // lostmark.go (testData:)
			return "", "", err
		}
	}
	setHeaders(msg, m)
	return exchange, key, nil
}

func setHeaders(msg *amqp091.Publishing, m propagation.Mark) {
	run, env := bus.Values(m)
	stale := false
	for k := range msg.Headers {
		if bus.IsMarkHeader(k) {
			stale = true
			break
		}
	}
	if !stale && run == "" && env == "" {
		return
	}
	t := make(amqp091.Table, len(msg.Headers)+2)
	for k, v := range msg.Headers {
		if !bus.IsMarkHeader(k) {
			t[k] = v
		}
	}
	if run != "" {
		t[bus.HeaderRun] = run
	}
	if env != "" {
		t[bus.HeaderEnv] = env
	}
	msg.Headers = t
}

// Channel wraps an amqp091-go channel so that publishes and consumers
// follow shadowlane's rules.
type Channel struct {
	s   *Shadow
	ch  *amqp091.Channel
	err error    // confirm mode could not be set
	ret *returns // basic.return of mandatory publishes (confirm mode)

	fwdOnce sync.Once // confirm mode for passing messages on to lanes
	fwdErr  error

	// rpc serializes the synchronous methods (basic.qos, basic.consume,
	// basic.cancel, confirm.select) this wrapper sends on ch. amqp091-go
	// hands a reply to whichever caller waits first: two at once on one
	// channel may each get the other's reply and fail (ErrCommandInvalid)
	// although the broker did both. A basic.cancel failed that way leaves
	// the deliveries channel open for ever; a basic.consume failed that
	// way leaves a consumer at the broker whose deliveries the client
	// drops, unacknowledged, until the channel closes.
	rpc sync.Mutex
}

// sync runs one synchronous method on c.ch, never two at once.
func (c *Channel) sync(f func() error) error {
	c.rpc.Lock()
	defer c.rpc.Unlock()
	return f()
}

// ErrUnroutable is wrapped by the error of a mandatory publish the broker
// returned (basic.return: no queue is bound for its routing key), with
// [WithConfirms]. For a marked publish the error is also a
// [*shadow.Error] wrapping [shadow.ErrNoShadowTarget]: the shadow twin
// exists but nothing is bound to it.
var ErrUnroutable = errors.New("shadowlane/amqp: mandatory publish returned unroutable")

// Channel wraps ch. With [WithConfirms] it puts ch in publisher confirm
// mode and listens for returned messages ([amqp091.Channel.NotifyReturn]);
// when confirm mode cannot be set, every publish returns the error.
func (s *Shadow) Channel(ch *amqp091.Channel) *Channel {
	c := &Channel{s: s, ch: ch}
	if s.c.confirms {
		if err := ch.Confirm(false); err != nil {
			c.err = fmt.Errorf("%w: confirm mode: %w", ErrNotConfirmed, err)
			return c
		}
		c.ret = &returns{rc: ch.NotifyReturn(make(chan amqp091.Return, 64))}
		go c.ret.run()
	}
	return c
}

// returns collects the channel's basic.return messages. The broker sends a
// mandatory message's basic.return before its basic.ack, and amqp091-go
// hands both over in that order from one goroutine, so once a publish is
// confirmed its return (if any) is in rc or in got. Only draining under mu
// keeps that true for the publisher that looks. Returns nobody claims (a
// mandatory publish on the raw channel) are kept, bounded, then forgotten.
type returns struct {
	mu  sync.Mutex
	rc  chan amqp091.Return
	got []amqp091.Return
}

const maxUnclaimedReturns = 256

// drain moves what rc holds into got; false once rc is closed (the
// channel closed).
func (r *returns) drain() bool {
	for {
		select {
		case x, ok := <-r.rc:
			if !ok {
				return false
			}
			if len(r.got) == maxUnclaimedReturns {
				r.got = append(r.got[:0], r.got[1:]...)
			}
			r.got = append(r.got, x)
		default:
			return true
		}
	}
}

// run keeps rc from filling up (which would stall the connection) until
// the channel closes.
func (r *returns) run() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		r.mu.Lock()
		open := r.drain()
		r.mu.Unlock()
		if !open {
			return
		}
	}
}

// claim removes and returns the return of a confirmed publish of msg to
// exchange and key, if the broker returned it. Identical messages
// published concurrently to the same place are interchangeable.
func (r *returns) claim(exchange, key string, msg *amqp091.Publishing) (amqp091.Return, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drain()
	for i, x := range r.got {
		if x.Exchange == exchange && x.RoutingKey == key && x.MessageId == msg.MessageId && x.CorrelationId == msg.CorrelationId && bytes.Equal(x.Body, msg.Body) {
			r.got = append(r.got[:i], r.got[i+1:]...)
			return x, true
		}
	}
	return amqp091.Return{}, false
}

// AMQP returns the wrapped channel. Publishing on it is safe at any time;
// a synchronous method (declare, bind, qos, consume, cancel, get, ...)
// called on it while a [Channel.Consume] runs may take a reply meant for
// the consumer (amqp091-go gives a reply to whichever caller waits first)
// and make both fail: use another channel for those.
func (c *Channel) AMQP() *amqp091.Channel { return c.ch }

// PublishWithContext is amqp091's PublishWithContext with the rules of
// [Shadow.Prepare]; a refused publish is a [*shadow.Error] and sends
// nothing. With [WithConfirms] it waits for the broker's confirmation, and
// a mandatory publish the broker returned (unroutable) is an error wrapping
// [ErrUnroutable] (for a marked publish also a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget]). Without confirms a returned message is not
// reported by the wrapper. A marked publish that fails counts an error
// "amqp publish" in the run's evidence (see the package doc).
func (c *Channel) PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp091.Publishing) error {
	err := c.publish(ctx, exchange, key, mandatory, immediate, msg)
	if err != nil {
		c.s.obs.PublishFailed(ctx, err)
	}
	return err
}

func (c *Channel) publish(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp091.Publishing) error {
	if c.err != nil {
		return c.err
	}
	exchange, key, err := c.s.Prepare(ctx, exchange, key, &msg)
	if err != nil {
		return err
	}
	if !c.s.c.confirms {
		return c.ch.PublishWithContext(ctx, exchange, key, mandatory, immediate, msg)
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, mandatory, immediate, msg)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: exchange %q, key %q (nacked, or the channel closed: is the exchange declared?)", ErrNotConfirmed, exchange, key)
	}
	if mandatory && c.ret != nil {
		if r, returned := c.ret.claim(exchange, key, &msg); returned {
			err := fmt.Errorf("%w: exchange %q, key %q: %d %s", ErrUnroutable, exchange, key, r.ReplyCode, r.ReplyText)
			if m := propagation.FromContext(ctx); m.Run != "" {
				target := exchange
				if exchange == "" {
					target = key
				}
				return shadow.Refuse(Store, target, err.Error(), m, errors.Join(shadow.ErrNoShadowTarget, ErrUnroutable))
			}
			return err
		}
	}
	return nil
}

// Mark returns the mark of a delivery from queue: its headers (the rules
// of package shadow/bus), or for a delivery from a shadow queue without a
// run header the fallback run. Malformed headers ([shadow.ErrUnsupported])
// and a run mark on a production queue (an anomaly, [shadow.ErrBlocked])
// are a [*shadow.Error].
func (s *Shadow) Mark(queue string, headers amqp091.Table) (propagation.Mark, error) {
	d := decode(headers)
	return s.rq.MarkOf(queue, &d)
}

// Takes reports whether a consumer of this Shadow's environment for the
// production queue takes a message marked m.
func (s *Shadow) Takes(queue string, m propagation.Mark) bool { return s.rq.Takes(queue, m) }

// Queues returns the queues [Channel.Consume] reads for the production
// queue: the (lane) queue and, when configured, its shadow twin.
func (s *Shadow) Queues(queue string) []string {
	q := []string{s.laneQueue(queue)}
	if s.hasQueue(queue) {
		q = append(q, s.rq.ShadowName(s.laneQueue(queue)))
	}
	return q
}

// Consume consumes the production queue (for a lane instance
// "<queue>-<env>") and, when the queue has a shadow twin, the shadow queue,
// with manual acknowledgements and the prefetch of [WithPrefetch], until
// ctx is done (it then cancels the consumers, hands back the deliveries
// it had received but not handled — nack with requeue, so none stays
// stranded on a channel that stays open — and returns nil) or the
// channel closes (it returns an error). The handler's nil acks a delivery;
// an error nacks it with requeue after a short pause, until it failed
// [WithMaxDeliveries] times: then it goes to [WithRefused] and is nacked
// without requeue (dead-lettered when the queue has a dead-letter
// exchange). A delivery refused for its mark (malformed, or a run mark on a
// production queue) is never handled: counted once and nacked without
// requeue (see [WithRequeueRefused]). With [WithLanes] the trunk passes a
// live lane's message on to the lane's queue and consumes the queue of a
// lane that left (see the package doc); a lane instance acks and skips a
// message that is not its env's. While the kill switch is off a consumer
// that gets a marked delivery holds it and what the broker sends it
// meanwhile on that queue (the prefetch bounds it) unacknowledged until
// the switch is on (see [WithMaxHold]); a lane instance whose lane is not
// live hands its deliveries back (nack with requeue), cancels itself on
// that queue and consumes again once listed. A shadow queue name is
// refused: production consumers never read shadow queues.
func (c *Channel) Consume(ctx context.Context, queue string, h Handler) error {
	if h == nil || queue == "" || c.s.rq.IsShadow(queue) || c.s.rq.IsLaneName(queue) {
		return fmt.Errorf("%w: consume needs a handler and a production queue (got %q)", ErrConfig, queue)
	}
	if err := c.sync(func() error { return c.ch.Qos(c.s.c.prefetch, 0, false) }); err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// The consumers end together: when one fails (the channel closed),
	// the others and the lane watcher stop too.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		stop()
	}
	var lanes *laneSet
	if c.s.rq.Env() == "" && c.s.rq.Config().Lanes != nil {
		if err := c.forwarding(); err != nil {
			return err
		}
		lanes = &laneSet{laneQueues: c.s.laneQueuesOf(queue)}
	}
	subs := make([]*sub, 0, 2)
	for _, q := range c.s.Queues(queue) {
		sb := &sub{c: c, prod: queue, queue: q, tries: map[string]int{}, lanes: lanes}
		if err := sb.start(); err != nil {
			for _, o := range subs {
				o.handBack() // what it was sent already goes back too
			}
			return err
		}
		subs = append(subs, sb)
	}
	for _, sb := range subs {
		wg.Go(func() {
			if err := sb.run(ctx, h); err != nil {
				fail(err)
			}
		})
	}
	var lw sync.WaitGroup
	if lanes != nil {
		lw.Go(func() { c.watchLanes(ctx, queue, lanes, h, &lw, fail) })
	}
	wg.Wait()
	stop()
	lw.Wait()
	for _, sb := range subs {
		if err := sb.handBack(); err != nil && !errors.Is(err, amqp091.ErrClosed) {
			fail(err)
		}
	}
	return errors.Join(errs...)
}

// sub is one consumer (basic.consume) of one queue.
type sub struct {
	c           *Channel
	prod, queue string
	tag         string
	ds          <-chan amqp091.Delivery
	tries       map[string]int  // failures per message, when the broker does not count
	lanes       *laneSet        // trunk with lanes: where it passed messages on
	handover    string          // the env whose lane queue this trunk consumer hands over
	prodCtx     context.Context // run's context carrying the zero mark: every production delivery's handler context
}

func (sb *sub) start() error {
	sb.tag = consumerTag()
	return sb.c.sync(func() error {
		ds, err := sb.c.ch.Consume(sb.queue, sb.tag, false, false, false, false, nil)
		if err != nil {
			return err
		}
		sb.ds = ds
		return nil
	})
}

// handBack cancels the consumer and nacks with requeue every delivery
// the broker had already sent it (the prefetch) that was not handled, so
// a consumer stopped on a channel that stays open strands nothing: the
// broker redelivers them to the queue's other (or next) consumers.
//
// The deliveries channel closes once the broker confirms the cancel. When
// the cancel fails nothing closes it: handBack then takes what is already
// there and returns the cancel's error rather than wait for ever; when a
// confirmed cancel still leaves it open for [handBackWait], it returns an
// error too (the broker requeues what it holds when the channel closes).
// A cancel failed while the channel stayed open when two synchronous
// methods ran at once on it and took each other's replies; [Channel.sync]
// rules that out, so a cancel now fails only with the channel (which
// closes the deliveries channel too).
func (sb *sub) handBack() error {
	first := sb.cancel()
	if sb.ds == nil {
		return first
	}
	wait := handBackWait
	if first != nil {
		wait = 100 * time.Millisecond
	}
	idle := time.NewTimer(wait)
	defer idle.Stop()
	for {
		select {
		case d, ok := <-sb.ds:
			if !ok {
				return first
			}
			if err := d.Nack(false, true); err != nil && first == nil {
				first = err
			}
			idle.Reset(wait)
		case <-idle.C:
			if first == nil {
				first = fmt.Errorf("slamqp: deliveries of %q still open %s after basic.cancel", sb.queue, wait)
			}
			return first
		}
	}
}

// handBackWait bounds how long handBack waits for the deliveries channel
// to close after a confirmed cancel.
const handBackWait = 10 * time.Second

// cancel cancels the consumer (once) and returns the broker's answer.
func (sb *sub) cancel() error {
	if sb.tag == "" {
		return nil
	}
	tag := sb.tag
	sb.tag = ""
	return sb.c.sync(func() error { return sb.c.ch.Cancel(tag, false) })
}

func (sb *sub) run(ctx context.Context, h Handler) error {
	s := sb.c.s
	sb.prodCtx = propagation.With(ctx, propagation.Mark{}) // built once, not per delivery
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-sb.ds:
			if !ok {
				if ctx.Err() == nil {
					return fmt.Errorf("slamqp: deliveries of %q closed: %w", sb.queue, amqp091.ErrClosed)
				}
				return nil
			}
			if ctx.Err() != nil {
				// Stopping, and this one came with the stop: hand it
				// back (handBack hands back the rest).
				return d.Nack(false, true)
			}
			dec := s.decide(sb.prod, sb.queue, &d)
			if dec.Action != bus.Wait {
				if err := sb.deliver(ctx, &d, dec, h); err != nil {
					return err
				}
				continue
			}
			// Hold it back (the kill switch), or hand it back with
			// every delivery already sent to us and stop consuming (a
			// lane that left): nothing spins. Then go on, or stop.
			var cont bool
			var err error
			if sb.holds(dec) {
				cont, err = sb.hold(ctx, d, dec, h)
			} else {
				cont, err = sb.handOff(ctx, []amqp091.Delivery{d}, dec)
			}
			if err != nil || !cont {
				return err
			}
		}
	}
}

// handOff hands held back (nack with requeue), cancels the consumer,
// hands back every delivery already sent too, waits until the consumer
// may consume again and consumes again (true), or returns false when ctx
// ended first. A lane that left the lanes leaves its queue to the trunk's
// hand-over this way.
func (sb *sub) handOff(ctx context.Context, held []amqp091.Delivery, dec bus.Decision) (bool, error) {
	if err := requeue(held); err != nil {
		return false, err
	}
	if err := sb.cancel(); err != nil {
		return false, err
	}
	for d := range sb.ds {
		if err := d.Nack(false, true); err != nil {
			return false, err
		}
	}
	if !sb.c.s.wait(ctx, sb.prod, dec) {
		return false, nil
	}
	return true, sb.start()
}

// holds reports whether a consumer that got a Wait decision holds the
// delivery back rather than hands it off: the kill switch (not a lane
// that left the lanes), unless [WithMaxHold] is 0.
func (sb *sub) holds(dec bus.Decision) bool {
	return sb.c.s.c.maxHold > 0 && dec.Err != nil && errors.Is(dec.Err, shadow.ErrKillSwitch)
}

// hold is the kill switch's wait: it keeps d, and every delivery the
// broker sends meanwhile, unacknowledged until load tests are on again,
// then delivers them in order (each decided again: when the switch goes
// off again the rest is held again) and returns true: the consumer goes
// on. The prefetch bounds what the broker sends meanwhile; without one
// ([WithPrefetch] 0) the consumer is cancelled (a delivery under way as
// the broker cancels it is returned to the queue and spends a delivery)
// and consumes again afterwards. A nack with requeue would spend a
// delivery on every flip of the switch: a quorum queue counts it toward
// its x-delivery-limit (dropped or dead-lettered past it) and
// [WithMaxDeliveries] reads the same count; the message would also come
// back flagged redelivered.
//
// The held deliveries go back (nack with requeue) only when ctx ends
// (false: the consumer stops, and Consume hands back the rest), when
// this lane leaves the lanes, or when load tests stay off for
// [WithMaxHold] (before RabbitMQ's consumer_timeout would close the
// channel, production consumers included): then it hands off (see
// handOff) and waits without holding anything.
func (sb *sub) hold(ctx context.Context, d amqp091.Delivery, dec bus.Decision, h Handler) (bool, error) {
	s := sb.c.s
	held := []amqp091.Delivery{d}
	cancelled := s.c.prefetch == 0
	if cancelled { // nothing bounds what the broker sends: stop it
		if err := sb.cancel(); err != nil {
			return false, errors.Join(err, requeue(held))
		}
		for d := range sb.ds {
			held = append(held, d)
		}
	}
	deadline := time.Now().Add(s.c.maxHold)
	for len(held) > 0 {
		end, err := sb.waitHeld(ctx, deadline, &held, cancelled)
		switch {
		case err != nil:
			return false, err // the channel closed: the broker requeues what it held
		case end == holdStop:
			return false, requeue(held)
		case end == holdHandBack:
			if cancelled {
				return sb.handOffCancelled(ctx, held, dec)
			}
			return sb.handOff(ctx, held, dec)
		}
		for len(held) > 0 && ctx.Err() == nil {
			dec := s.decide(sb.prod, sb.queue, &held[0])
			if dec.Action == bus.Wait {
				break // off again (or the lane left): wait again
			}
			d := held[0]
			held = held[1:]
			if err := sb.deliver(ctx, &d, dec, h); err != nil {
				return false, errors.Join(err, requeue(held))
			}
		}
	}
	if cancelled {
		return true, sb.start()
	}
	return true, nil
}

// handOffCancelled is handOff for a consumer cancelled already.
func (sb *sub) handOffCancelled(ctx context.Context, held []amqp091.Delivery, dec bus.Decision) (bool, error) {
	if err := requeue(held); err != nil {
		return false, err
	}
	if !sb.c.s.wait(ctx, sb.prod, dec) {
		return false, nil
	}
	return true, sb.start()
}

type holdEnd uint8

const (
	holdReady    holdEnd = iota // deliver what is held
	holdStop                    // the consumer stops: hand it back
	holdHandBack                // the lane left, or held for WithMaxHold: hand it back, wait
)

// waitHeld polls until held deliveries may be delivered or must go back;
// meanwhile it adds what the broker sends to held (unless the consumer is
// cancelled). The error is a closed channel.
func (sb *sub) waitHeld(ctx context.Context, deadline time.Time, held *[]amqp091.Delivery, cancelled bool) (holdEnd, error) {
	r := sb.c.s.rq
	ds := sb.ds
	if cancelled {
		ds = nil
	}
	t := time.NewTicker(sb.c.s.c.poll)
	defer t.Stop()
	for {
		switch {
		case ctx.Err() != nil:
			return holdStop, nil
		case !r.Live(sb.prod):
			return holdHandBack, nil
		case r.LoadTestOn():
			return holdReady, nil
		case !time.Now().Before(deadline):
			return holdHandBack, nil
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		case d, ok := <-ds:
			if !ok {
				if ctx.Err() != nil {
					return holdStop, nil
				}
				return holdStop, fmt.Errorf("slamqp: deliveries of %q closed: %w", sb.queue, amqp091.ErrClosed)
			}
			*held = append(*held, d)
		}
	}
}

// requeue hands held deliveries back (nack with requeue, one by one: a
// multiple nack would take the channel's other consumers' deliveries too).
func requeue(held []amqp091.Delivery) error {
	var first error
	for _, d := range held {
		if err := d.Nack(false, true); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Shadow) decide(prodQueue, fromQueue string, d *amqp091.Delivery) bus.Decision {
	dd := decode(d.Headers)
	return s.rq.Consume(prodQueue, fromQueue, &dd)
}

// wait waits until a consumer that waited on d may consume again; false
// when ctx ended first.
func (s *Shadow) wait(ctx context.Context, queue string, d bus.Decision) bool {
	return s.rq.WaitReady(ctx, queue, d, s.c.poll)
}

// deliver handles one delivery and settles it (ack, nack, or hand it back)
// whatever it returns; it returns only errors of the channel.
func (sb *sub) deliver(ctx context.Context, d *amqp091.Delivery, dec bus.Decision, h Handler) error {
	s := sb.c.s
	if _, ok := d.Headers[headerProbe]; ok {
		return d.Ack(false) // a trunk's probe of a lane queue
	}
	onLaneQueue := sb.handover != "" || s.rq.Env() != ""
	if onLaneQueue && dec.Action != bus.Refuse && !restore(d) {
		// A copy the trunk did not pass on (a lane queue still bound
		// by an older version): the trunk decides on its own copy.
		return d.Ack(false)
	}
	switch dec.Action {
	case bus.Skip:
		switch {
		case sb.handover != "" && dec.Mark.Env == sb.handover:
			// The lane is live again: it takes its queue back.
			if err := d.Nack(false, true); err != nil {
				return err
			}
			return errHandOverEnds
		case sb.lanes != nil && dec.Err == nil && dec.Mark.Env != "":
			return sb.forward(ctx, d, dec, h)
		}
		return d.Ack(false)
	case bus.Refuse:
		if s.c.refused != nil {
			s.c.refused(propagation.With(ctx, propagation.Mark{}), d, dec.Err)
		}
		return d.Nack(false, s.c.requeueBad)
	}
	if sb.lanes != nil && sb.handover == "" && dec.Mark.Env != "" {
		if err := sb.probe(ctx, dec.Mark.Env); err != nil {
			return errors.Join(err, d.Nack(false, true)) // d goes back, whatever probe left behind
		}
	}
	return sb.handle(ctx, d, dec, h)
}

// handle hands d to h under dec's mark and settles it: nil acks; an error
// nacks with requeue after a pause, or after the last delivery refuses it.
func (sb *sub) handle(ctx context.Context, d *amqp091.Delivery, dec bus.Decision, h Handler) error {
	s := sb.c.s
	mctx := sb.prodCtx // ctx is run's
	if !dec.Mark.IsZero() || mctx == nil {
		mctx = propagation.With(ctx, dec.Mark)
	}
	if !d.Redelivered && dec.Mark.Run != "" { // marked work; the broker's redeliveries are the same message
		s.obs.Entry(mctx, sb.prod, sb.queue)
	}
	herr := h(mctx, d)
	if herr == nil {
		// The key (which allocates, and hashes body and headers of a
		// message without an id) is needed only when something failed
		// here before.
		failedHere := false
		if len(sb.tries) > 0 {
			key := deliveryKey(d)
			_, failedHere = sb.tries[key]
			delete(sb.tries, key)
		}
		if d.Redelivered && !failedHere {
			s.obs.Redelivered()
		}
		if sb.handover != "" {
			s.obs.HandedOver(1)
		}
		return d.Ack(false)
	}
	key := deliveryKey(d)
	n := deliveries(d, sb.tries, key)
	if n >= s.c.maxDeliver {
		delete(sb.tries, key)
		s.obs.HandlerFailed(mctx)
		if s.c.refused != nil {
			s.c.refused(mctx, d, fmt.Errorf("%w (%d deliveries): %w", ErrDeliveriesExhausted, n, herr))
		}
		return d.Nack(false, false)
	}
	sb.pause(ctx, n)
	return d.Nack(false, true)
}

// deliveries returns how often d has been delivered and failed, counting
// this failure: the broker's x-delivery-count (quorum queues count the
// earlier deliveries) when present, else our own count.
func deliveries(d *amqp091.Delivery, tries map[string]int, key string) int {
	switch v := d.Headers["x-delivery-count"].(type) {
	case int64:
		return int(v) + 1
	case int32:
		return int(v) + 1
	case int:
		return v + 1
	}
	if len(tries) > 10000 {
		clear(tries)
	}
	tries[key]++
	return tries[key]
}

func deliveryKey(d *amqp091.Delivery) string {
	if d.MessageId != "" {
		return "id:" + d.MessageId
	}
	h := fnv.New64a()
	h.Write(d.Body)
	for k, v := range d.Headers {
		fmt.Fprintf(h, "|%s=%v", k, v)
	}
	return fmt.Sprintf("body:%x", h.Sum64())
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
// "<queue>-<env>" (same arguments, no bindings: the trunk passes the lane's
// messages on to it); for the trunk it returns t.
func (s *Shadow) LaneTopology(t Topology) Topology {
	if s.rq.Env() == "" {
		return t
	}
	out := Topology{Exchanges: t.Exchanges}
	seenQ := map[string]bool{}
	addQ := func(q Queue) {
		if !seenQ[q.Name] {
			seenQ[q.Name] = true
			out.Queues = append(out.Queues, q)
		}
	}
	type bkey struct{ q, x, k string }
	seenB := map[bkey]bool{}
	addB := func(b Binding) {
		if k := (bkey{b.Queue, b.Exchange, b.Key}); !seenB[k] {
			seenB[k] = true
			out.Bindings = append(out.Bindings, b)
		}
	}
	// Applied to a topology that already holds the lane queues (twice, or
	// by Declare after the caller did), it adds nothing: the lane suffix
	// is never applied twice.
	for _, q := range t.Queues {
		addQ(q)
		lq := q
		lq.Name = s.laneQueue(q.Name)
		addQ(lq)
	}
	for _, b := range t.Bindings {
		if !s.rq.IsLaneName(b.Queue) {
			addB(b)
		}
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
			a[k] = s.rq.ShadowName(ex)
		}
		return a, nil
	}
	for _, e := range t.Exchanges {
		if !s.hasExchange(e.Name) {
			continue
		}
		se := e
		se.Name = s.rq.ShadowName(e.Name)
		var err error
		if se.Args, err = args(e.Name, e.Args); err != nil {
			return Topology{}, err
		}
		out.Exchanges = append(out.Exchanges, se)
	}
	queueOK := func(q string) (string, bool) {
		prod := q
		if s.rq.IsLaneName(q) {
			prod = strings.TrimSuffix(q, "-"+s.rq.Env())
		}
		return s.rq.ShadowName(q), s.hasQueue(prod) || s.hasQueue(q)
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
		out.Bindings = append(out.Bindings, Binding{Queue: qn, Exchange: s.rq.ShadowName(b.Exchange), Key: b.Key, Args: b.Args})
	}
	return out, nil
}

// Declare declares the production topology t (with this instance's lane
// queues when [WithEnv] is set) and its shadow twins on ch. Nothing is
// declared when the shadow topology cannot be derived.
func (s *Shadow) Declare(ch *amqp091.Channel, t Topology) error {
	orig := t
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
	return s.unbindLanes(ch, orig)
}

// unbindLanes removes the bindings an older version gave lane queues (the
// production queue's bindings, copied): a lane queue only holds what the
// trunk passed on. Unbinding what is not bound is a no-op for the broker.
func (s *Shadow) unbindLanes(ch *amqp091.Channel, t Topology) error {
	if s.rq.Env() == "" {
		return nil
	}
	for _, b := range t.Bindings {
		if s.rq.IsLaneName(b.Queue) {
			continue
		}
		lq := s.laneQueue(b.Queue)
		if err := ch.QueueUnbind(lq, b.Key, b.Exchange, b.Args); err != nil {
			return err
		}
		if s.hasExchange(b.Exchange) && (s.hasQueue(b.Queue) || s.hasQueue(lq)) {
			if err := ch.QueueUnbind(s.rq.ShadowName(lq), b.Key, s.rq.ShadowName(b.Exchange), b.Args); err != nil {
				return err
			}
		}
	}
	return nil
}
