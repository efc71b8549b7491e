package slamqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Store is the store name on every [*shadow.Error] and decision counter.
const Store = "amqp"

// DefaultPrefetch is the prefetch count [Channel.Consume] sets when
// [WithPrefetch] is not given.
const DefaultPrefetch = 32

// DefaultMaxDeliveries is how often a delivery whose handler fails is
// tried in all when [WithMaxDeliveries] is not given.
const DefaultMaxDeliveries = 5

// DefaultMaxHold is how long a consumer holds marked deliveries back
// while the kill switch is off when [WithMaxHold] is not given: half of
// RabbitMQ's default consumer_timeout (30 minutes).
const DefaultMaxHold = 15 * time.Minute

// Handler handles one delivery; ctx carries its mark. nil acks the
// delivery; an error nacks it with requeue (it is delivered again) until
// it failed [WithMaxDeliveries] times, then it goes the refusal path.
type Handler func(ctx context.Context, d *amqp091.Delivery) error

// RefusedFunc is told about a delivery that is refused, before it is
// nacked without requeue (so the queue's dead-letter exchange, if any,
// gets it): its mark headers are malformed or it carries a run mark on a
// production queue (err wraps a [*shadow.Error]; ctx carries no mark), or
// its handler failed on every delivery (err wraps [ErrDeliveriesExhausted];
// ctx carries its mark). It is told once: lane instances skip their copy of
// a message the trunk refuses.
type RefusedFunc func(ctx context.Context, d *amqp091.Delivery, err error)

// ErrDeliveriesExhausted is wrapped by the error a [RefusedFunc] gets for
// a delivery whose handler failed on every delivery.
var ErrDeliveriesExhausted = errors.New("slamqp: handler failed on every delivery")

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	bus        bus.Config // queue rules; exchanges share everything but the names
	exchanges  bus.Names
	refused    RefusedFunc
	requeueBad bool
	rt         *shadowlane.Runtime
	prefetch   int
	maxDeliver int
	confirms   bool
	maxHold    time.Duration
	poll       time.Duration
}

// WithShadowExchanges names production exchanges that have a shadow twin.
// A marked publish to any other exchange is refused with
// [shadow.ErrNoShadowTarget].
func WithShadowExchanges(names ...string) Option {
	return optionFunc(func(c *config) { c.exchanges.Add(names...) })
}

// WithShadowQueues names production queues that have a shadow twin: the
// queues a marked publish through the default exchange ("") may address,
// and the queues whose consumers get a shadow consumer.
func WithShadowQueues(names ...string) Option {
	return optionFunc(func(c *config) { c.bus.Names.Add(names...) })
}

// WithAll declares that every exchange and queue has a shadow twin.
func WithAll() Option {
	return optionFunc(func(c *config) { c.bus.Names.SetAll(); c.exchanges.SetAll() })
}

// WithNaming sets how shadow exchange and queue names are derived (default
// [shadow.DefaultTopic], suffix "_shadow").
func WithNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.bus.Naming = n }) }

// WithEnv makes this instance a lane instance of env: it consumes
// "<queue>-<env>" (declared by [Shadow.Declare], not bound: it holds what
// a trunk with [WithLanes] passes on to it) and handles only messages
// tagged env.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.bus.Env = env }) }

// WithLanes tells consumers (keyed by production queue name) which
// environments have a live lane consumer: the trunk passes their messages
// on to the lane's queue (confirmed, then acks the original), and hands a
// lane's queue over (consumes it) once its env leaves; a lane instance
// whose env is not listed takes nothing (it cancels its consumer, hands
// its unacknowledged deliveries back with a requeue, and consumes again
// once listed). Give the trunk and every lane instance the same lanes.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.bus.Lanes = l }) }

// WithRefused sets a callback for refused deliveries.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithRequeueRefused nacks deliveries refused for their mark with requeue
// instead of dead-lettering them (for a fix-and-retry workflow; they are
// never handled either way).
func WithRequeueRefused() Option { return optionFunc(func(c *config) { c.requeueBad = true }) }

// WithFallbackRun sets the run id of deliveries from a shadow queue without
// a run header (default [bus.DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.bus.FallbackRun = run })
}

// WithRuntime takes the kill switch from rt: while rt says load-test
// traffic is off, a consumer that gets a marked delivery holds it, and
// what the broker sends it meanwhile on that (shadow) queue (at most the
// prefetch), unacknowledged, and handles them once the switch is on (see
// [WithMaxHold]). Default: the default runtime ([shadowlane.Default]),
// looked up per delivery.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// WithMaxHold bounds how long a consumer holds marked deliveries back,
// unacknowledged, while the kill switch is off (default
// [DefaultMaxHold]). A held delivery spends nothing; handed back with a
// nack and requeue it would count toward a quorum queue's
// x-delivery-limit (RabbitMQ 4 sets 20 by default; past it the broker
// drops or dead-letters the message) and [WithMaxDeliveries], once per
// flip of the switch. But RabbitMQ closes a channel that leaves a
// delivery unacknowledged for its consumer_timeout (default 30 minutes),
// production consumers on it included: after d the consumer hands what
// it holds back (nack with requeue: one delivery spent per such long
// hold), cancels itself on that queue and consumes again once the switch
// is on. Keep d well below the broker's consumer_timeout. Other
// consumers of the queue do not get what this one holds (if their kill
// switch is on, they wait for it up to d). 0 hands marked
// deliveries back at once, spending a delivery on every hold. A consumer
// that stops hands back what it holds. Without a prefetch
// ([WithPrefetch] 0) a hold cancels the consumer, so that the broker does
// not send it the whole queue; a delivery under way then goes back to
// the queue and spends a delivery.
func WithMaxHold(d time.Duration) Option { return optionFunc(func(c *config) { c.maxHold = d }) }

// WithPrefetch sets the prefetch count (basic.qos) [Channel.Consume] sets
// on its channel (default [DefaultPrefetch]): at most n unacknowledged
// deliveries per consumer.
func WithPrefetch(n int) Option { return optionFunc(func(c *config) { c.prefetch = n }) }

// WithMaxDeliveries bounds how often a delivery whose handler fails is
// delivered (default [DefaultMaxDeliveries]); after the last failure it
// goes the refusal path ([WithRefused], then nack without requeue: the
// dead-letter exchange). The count is the broker's x-delivery-count header
// where the queue keeps one (quorum queues), else the consumer's own count
// by message id (or body), which a restart of the consumer resets. A
// failed delivery is requeued after a short, growing pause, so a poison
// message cannot spin. The kill switch's hold does not count (see
// [WithMaxHold]); a delivery handed back by a stopping consumer does
// where the broker counts it.
func WithMaxDeliveries(n int) Option { return optionFunc(func(c *config) { c.maxDeliver = n }) }

// WithConfirms puts channels wrapped by [Shadow.Channel] in publisher
// confirm mode; [Channel.PublishWithContext] then waits for the broker's
// confirmation and returns an error wrapping [ErrNotConfirmed] when the
// broker rejects the message or the channel closes first (for example a
// publish to an undeclared shadow exchange, which the broker answers by
// closing the channel with 404). Without confirms a publish returns as soon
// as the message is written: a rejected or unroutable message is not
// reported.
func WithConfirms() Option { return optionFunc(func(c *config) { c.confirms = true }) }

// ErrNotConfirmed is wrapped by the error of a publish the broker did not
// confirm (see [WithConfirms]).
var ErrNotConfirmed = errors.New("slamqp: publish not confirmed by the broker")

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("slamqp: invalid configuration")

// Shadow applies shadowlane's rules (package shadow/bus) to amqp091-go
// channels. It is immutable and safe for concurrent use.
type Shadow struct {
	c   config
	rq  *bus.Rules             // queues (publish through the default exchange, consume)
	rx  *bus.Rules             // exchanges
	obs shadowlane.BusObserver // delivery counts, per-run evidence

	lqMu sync.Mutex
	lq   map[string]*laneQueues // production queue -> its lane queues (trunk)
}

// Stats returns what the consumers of s counted: messages a trunk passed
// on to a live lane's queue, messages it handled from a left lane's queue
// (the hand-over), and messages handled on a redelivery they did not ask
// for (a crash or a lost acknowledgement: every at-least-once duplicate
// is among them).
func (s *Shadow) Stats() bus.Stats { return s.obs.Snapshot() }

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		bus:        bus.Config{Store: Store, Kind: "queue", Naming: shadow.DefaultTopic},
		prefetch:   DefaultPrefetch,
		maxDeliver: DefaultMaxDeliveries,
		maxHold:    DefaultMaxHold,
		poll:       50 * time.Millisecond,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.prefetch < 0 || c.maxDeliver < 1 || c.maxHold < 0 {
		return nil, fmt.Errorf("%w: prefetch %d, max deliveries %d, max hold %s: want prefetch >= 0, max deliveries >= 1 and max hold >= 0", ErrConfig, c.prefetch, c.maxDeliver, c.maxHold)
	}
	shadowlane.BindBus(c.rt, &c.bus)
	rq, err := bus.New(c.bus)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	xc := c.bus
	xc.Kind, xc.Names = "exchange", c.exchanges
	rx, err := bus.New(xc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Shadow{c: c, rq: rq, rx: rx, obs: shadowlane.NewBusObserver(c.rt, Store)}, nil
}

// Rules returns the message-system rules of queues and of exchanges.
func (s *Shadow) Rules() (queues, exchanges *bus.Rules) { return s.rq, s.rx }

// ShadowName returns the shadow name of an exchange or queue.
func (s *Shadow) ShadowName(name string) string { return s.rq.ShadowName(name) }

func (s *Shadow) hasExchange(name string) bool { return s.rx.Has(name) }

func (s *Shadow) hasQueue(name string) bool { return s.rq.Has(name) }

// laneQueue is queue for the trunk and "<queue>-<env>" for a lane.
func (s *Shadow) laneQueue(q string) string { return s.rq.LaneName(q) }

// decode reads the mark from a header table. Values must be strings (or
// byte slices) holding valid ids; keys match ignoring case, and two
// spellings must agree.
func decode(t amqp091.Table) bus.Decoder {
	var d bus.Decoder
	for k, v := range t {
		f := bus.FieldOf(k)
		if f == bus.NoField {
			continue
		}
		switch x := v.(type) {
		case string:
			d.Add(f, x, true)
		case []byte:
			d.Add(f, string(x), true)
		default:
			d.Add(f, "", false)
		}
	}
	return d
}
