package slredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Message is a pub/sub message handed to a [Handler]. Channel and Pattern
// of the embedded *redis.Message are the application's names (the
// production channel and pattern) also for load-test messages, which Redis
// delivered on shadow channels; WireChannel and WirePattern are the names
// Redis reported.
type Message struct {
	*redis.Message
	// WireChannel is the channel the message was published to, as Redis
	// reported it ("shadow:orders" for a load-test message on "orders").
	WireChannel string
	// WirePattern is the pattern that matched, as subscribed on the wire
	// ("" for a channel subscription).
	WirePattern string
}

// Handler handles one pub/sub message of a [Subscription]. ctx carries a
// load-test mark ([propagation.FromContext]) for messages that arrived on
// a shadow channel and no mark for production messages. Calls of one
// subscription never overlap.
type Handler func(ctx context.Context, msg *Message)

// SubscribeOption configures [Hook.Subscribe], [Hook.PSubscribe] and
// [Hook.SSubscribe].
type SubscribeOption interface{ applySubscribe(*subConfig) }

type subOptionFunc func(*subConfig)

func (f subOptionFunc) applySubscribe(c *subConfig) { f(c) }

type subConfig struct {
	fallbackRun    string
	productionOnly bool
	onError        func(error)
}

// WithFallbackRun sets the run id of messages received on shadow channels
// (default [bus.DefaultFallbackRun]); it must be a valid id
// ([propagation.ValidID]).
func WithFallbackRun(run string) SubscribeOption {
	return subOptionFunc(func(c *subConfig) { c.fallbackRun = run })
}

// WithProductionOnly subscribes to the production channels or patterns
// only, without their shadow twins: for a service that does not take part
// in load tests but should still never see load-test messages (the guard
// drops those a broad pattern catches).
func WithProductionOnly() SubscribeOption {
	return subOptionFunc(func(c *subConfig) { c.productionOnly = true })
}

// WithReceiveErrors sets the function told about errors of the running
// subscription (a broken connection, a failed health-check ping): the
// subscription goes on, go-redis reconnecting and subscribing again. It
// is never called concurrently with the handler. By default these errors
// are logged with [slog.Default] at level Warn.
func WithReceiveErrors(f func(err error)) SubscribeOption {
	return subOptionFunc(func(c *subConfig) { c.onError = f })
}

type subKind uint8

const (
	kindChannels subKind = iota
	kindPatterns
	kindShard
)

// command is the Redis command of k, also the counter target of guard
// drops.
func (k subKind) command() string {
	switch k {
	case kindPatterns:
		return "PSUBSCRIBE"
	case kindShard:
		return "SSUBSCRIBE"
	}
	return "SUBSCRIBE"
}

// confirmation is the kind of the replies that confirm a subscription.
func (k subKind) confirmation() string {
	switch k {
	case kindPatterns:
		return "psubscribe"
	case kindShard:
		return "ssubscribe"
	}
	return "subscribe"
}

// Timings of the subscription's connections.
var (
	setupTimeout   = 10 * time.Second // for each confirmation while subscribing
	healthInterval = 10 * time.Second // ping after this long without traffic
	pingTimeout    = 5 * time.Second
	maxBackoff     = 5 * time.Second // between attempts after receive errors
)

// Subscription is a running subscription made with [Hook.Subscribe],
// [Hook.PSubscribe] or [Hook.SSubscribe]. It holds one go-redis PubSub for
// the production names and one for their shadow twins (only one of them
// with [WithProductionOnly] or a marked context).
type Subscription struct {
	h       *Hook
	kind    subKind
	handler Handler
	onError func(error)
	ctx     context.Context // life of the subscription; production messages' context
	marked  context.Context // context of load-test messages
	cancel  context.CancelFunc
	legs    []*leg // fixed once Subscribe returns
	after   func() bool
	every   time.Duration // health-check interval
	done    chan struct{}
	wg      sync.WaitGroup

	hmu sync.Mutex // serializes handler and error-function calls

	mu      sync.Mutex
	stopped bool
	err     error
}

// leg is one go-redis PubSub of a subscription.
type leg struct {
	ps      *redis.PubSub
	shadow  bool              // every message is load-test traffic
	toApp   map[string]string // wire pattern -> the application's pattern
	pending []*redis.Message  // received while waiting for confirmations
	alive   chan struct{}     // traffic seen, for the health check
}

// Subscribe subscribes handler to channels and to their shadow twins on
// rdb (a client with this hook; in instance mode the twins are subscribed
// on the shadow client, which is where marked PUBLISH goes) and calls
// handler for every message until ctx is done or the subscription is
// closed. It returns once Redis confirmed every subscription.
//
// Messages on shadow channels reach handler with ctx marked (run
// [bus.DefaultFallbackRun] or [WithFallbackRun], no env: pub/sub carries no
// mark) and msg.Channel set to the production channel; production messages
// reach it unmarked. A production channel that is a shadow name is refused
// with [shadow.ErrShadowFromProduction] (the two-way guard), and a
// production subscription never hands handler a message published on a
// shadow channel: it is dropped and counted as a guard decision.
//
// Under a load-test mark (a ctx with a run), only the shadow twins are
// subscribed and every message carries that mark: marked work never
// follows production channels.
//
// When the hook cannot give channels shadow twins (misconfigured, no
// naming on a shadow client of the production server, a *redis.Ring) it
// fails closed with a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget]
// or [shadow.ErrUnsupported], unless [WithProductionOnly] is set.
func (h *Hook) Subscribe(ctx context.Context, rdb redis.UniversalClient, channels []string, handler Handler, opts ...SubscribeOption) (*Subscription, error) {
	return h.subscribe(ctx, rdb, kindChannels, channels, handler, opts)
}

// PSubscribe is [Hook.Subscribe] for glob patterns: each production
// pattern is subscribed with its shadow pattern, which matches exactly the
// shadow names of the channels the pattern matches. msg.Pattern is the
// application's pattern. A production pattern that also matches shadow
// channels ("*", "shadow*", "*orders*") never hands handler their messages:
// they are dropped and counted as guard decisions ([shadow.Record], store
// "redis", target "PSUBSCRIBE"); load-test messages come through the
// shadow pattern instead, marked.
func (h *Hook) PSubscribe(ctx context.Context, rdb redis.UniversalClient, patterns []string, handler Handler, opts ...SubscribeOption) (*Subscription, error) {
	return h.subscribe(ctx, rdb, kindPatterns, patterns, handler, opts)
}

// SSubscribe is [Hook.Subscribe] for sharded channels (SSUBSCRIBE, Redis
// 7+), which a marked SPUBLISH sends to the shadow name. The production
// channels and the shadow channels are subscribed on separate connections:
// on a cluster the channels of each side must hash to one slot, as with
// go-redis's own SSubscribe.
func (h *Hook) SSubscribe(ctx context.Context, rdb redis.UniversalClient, channels []string, handler Handler, opts ...SubscribeOption) (*Subscription, error) {
	return h.subscribe(ctx, rdb, kindShard, channels, handler, opts)
}

func (h *Hook) subscribe(ctx context.Context, rdb redis.UniversalClient, kind subKind, names []string, handler Handler, opts []SubscribeOption) (*Subscription, error) {
	c := subConfig{fallbackRun: bus.DefaultFallbackRun}
	for _, o := range opts {
		o.applySubscribe(&c)
	}
	switch {
	case rdb == nil:
		return nil, errors.New("slredis: " + kind.command() + ": nil client")
	case handler == nil:
		return nil, errors.New("slredis: " + kind.command() + ": nil handler")
	case len(names) == 0:
		return nil, errors.New("slredis: " + kind.command() + ": no channel or pattern")
	case !propagation.ValidID(c.fallbackRun):
		return nil, fmt.Errorf("slredis: %s: fallback run %q is not a valid id", kind.command(), c.fallbackRun)
	}
	names = dedupe(names)
	m := propagation.FromContext(ctx)
	loadTest := m.Run != ""
	if loadTest && c.productionOnly {
		h.decisions().Record(m.Run, Store, kind.command(), shadow.Block)
		return nil, &shadow.Error{Store: Store, Target: kind.command(), Rule: "a load-test subscription cannot follow production channels only", Mark: m, Err: shadow.ErrBlocked}
	}
	if !loadTest && h.guard {
		args := make([]any, 0, len(names)+1)
		args = append(args, kind.command())
		for _, n := range names {
			args = append(args, n)
		}
		if _, err := h.rw.Guard(args); err != nil {
			h.decisions().Record("", Store, kind.command(), shadow.Guard)
			return nil, err
		}
	}
	var shadowRDB redis.UniversalClient
	if !c.productionOnly {
		var err error
		if shadowRDB, err = h.pubsubTarget(rdb, kind, m); err != nil {
			h.decisions().Record(m.Run, Store, kind.command(), shadow.Block)
			return nil, err
		}
	}

	s := &Subscription{h: h, kind: kind, handler: handler, onError: c.onError, every: healthInterval, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.marked = s.ctx
	if !loadTest {
		s.marked = propagation.With(s.ctx, propagation.Mark{Run: c.fallbackRun})
	}
	s.after = context.AfterFunc(ctx, func() { s.shutdown(ctx.Err()) })
	if !loadTest {
		if err := s.open(ctx, rdb, false, names); err != nil {
			return nil, s.fail(err)
		}
	}
	if shadowRDB != nil {
		if err := s.open(ctx, shadowRDB, true, names); err != nil {
			return nil, s.fail(err)
		}
	}
	for _, l := range s.legs {
		s.wg.Add(2)
		go s.receive(l)
		go s.health(l)
	}
	go func() {
		s.wg.Wait()
		close(s.done)
	}()
	return s, nil
}

// pubsubTarget returns the client whose channels hold the shadow twins,
// or why there is none.
func (h *Hook) pubsubTarget(rdb redis.UniversalClient, kind subKind, m propagation.Mark) (redis.UniversalClient, error) {
	refuse := func(rule string, err error) error {
		return &shadow.Error{Store: Store, Target: kind.command(), Rule: rule, Mark: m, Err: err}
	}
	if h.err != nil {
		return nil, refuse("hook misconfigured: "+h.err.Error(), shadow.ErrNoShadowTarget)
	}
	target := rdb
	if h.instance {
		target = h.client
		if !h.rw.Renames() && !otherServer(rdb, h.client) {
			return nil, refuse("pub/sub channels belong to the server, not to a database, and the shadow client is not known to be another server: add WithKeyNaming so shadow channels get their own names", shadow.ErrNoShadowTarget)
		}
	} else if !h.rw.Renames() {
		return nil, refuse("no shadow key naming configured", shadow.ErrNoShadowTarget)
	}
	if _, ok := target.(*redis.Ring); ok {
		return nil, refuse("go-redis routes pub/sub on a Ring by channel to one shard; subscribe on a shard client", shadow.ErrUnsupported)
	}
	return target, nil
}

// wireName is the name subscribed on the wire for the application's name n.
func (s *Subscription) wireName(shadowSide bool, n string) string {
	switch {
	case !shadowSide || !s.h.rw.Renames():
		return n
	case s.kind == kindPatterns:
		return s.h.rw.ShadowPattern(n)
	}
	return s.h.rw.Naming.Shadow(n)
}

// open subscribes one leg and waits for Redis to confirm every name.
func (s *Subscription) open(ctx context.Context, rdb redis.UniversalClient, shadowSide bool, names []string) error {
	l := &leg{shadow: shadowSide, alive: make(chan struct{}, 1)}
	wire := make([]string, len(names))
	for i, n := range names {
		wire[i] = s.wireName(shadowSide, n)
	}
	if shadowSide && s.kind == kindPatterns {
		l.toApp = make(map[string]string, len(names))
		for i, n := range names {
			l.toApp[wire[i]] = n
		}
	}
	// With channels, rdb.Subscribe and friends report write errors only
	// through the next Receive (and a Ring needs them to pick a shard).
	switch s.kind {
	case kindPatterns:
		l.ps = rdb.PSubscribe(ctx, wire...)
	case kindShard:
		l.ps = rdb.SSubscribe(ctx, wire...)
	default:
		l.ps = rdb.Subscribe(ctx, wire...)
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = l.ps.Close()
		return ctx.Err()
	}
	s.legs = append(s.legs, l)
	s.mu.Unlock()
	want := s.kind.confirmation()
	for seen := 0; seen < len(wire); {
		v, err := l.ps.ReceiveTimeout(ctx, setupTimeout)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("slredis: %s %s: %w", s.kind.command(), side(shadowSide), err)
		}
		switch v := v.(type) {
		case *redis.Subscription:
			if v.Kind == want {
				seen++
			}
		case *redis.Message:
			l.pending = append(l.pending, v)
		}
	}
	return nil
}

func side(shadowSide bool) string {
	if shadowSide {
		return "shadow channels"
	}
	return "production channels"
}

// fail ends a subscription that could not start.
func (s *Subscription) fail(err error) error {
	s.after()
	s.shutdown(err)
	return err
}

// receive runs one leg's receive loop.
func (s *Subscription) receive(l *leg) {
	defer s.wg.Done()
	for _, m := range l.pending {
		s.dispatch(l, m)
	}
	l.pending = nil
	var backoff time.Duration
	for {
		v, err := l.ps.Receive(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				s.shutdown(fmt.Errorf("slredis: %s %s: %w", s.kind.command(), side(l.shadow), err))
				return
			}
			s.report(fmt.Errorf("slredis: %s %s: receive: %w", s.kind.command(), side(l.shadow), err))
			// The first retry is at once: go-redis has reconnected.
			if backoff > 0 {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(backoff):
				}
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), maxBackoff)
			continue
		}
		backoff = 0
		select {
		case l.alive <- struct{}{}:
		default:
		}
		if m, ok := v.(*redis.Message); ok {
			s.dispatch(l, m)
		}
	}
}

// health pings a leg's connection after healthInterval without traffic,
// so that a dead connection is found and replaced (go-redis reconnects
// when the ping fails).
func (s *Subscription) health(l *leg) {
	defer s.wg.Done()
	t := time.NewTimer(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-l.alive:
		case <-t.C:
			pctx, cancel := context.WithTimeout(s.ctx, pingTimeout)
			err := l.ps.Ping(pctx)
			cancel()
			if err != nil && s.ctx.Err() == nil {
				s.report(fmt.Errorf("slredis: %s %s: health-check ping: %w", s.kind.command(), side(l.shadow), err))
			}
		}
		t.Reset(s.every)
	}
}

// dispatch hands one message to the handler, or drops it (guard).
func (s *Subscription) dispatch(l *leg, m *redis.Message) {
	msg := &Message{Message: m, WireChannel: m.Channel, WirePattern: m.Pattern}
	ctx := s.ctx
	if l.shadow {
		ctx = s.marked
		if p, ok := s.h.rw.ProductionName(m.Channel); ok {
			m.Channel = p
		}
		if p, ok := l.toApp[m.Pattern]; ok {
			m.Pattern = p
		}
	} else if s.h.guard && s.h.rw.Naming.IsShadow(m.Channel) {
		// A production pattern caught a shadow channel.
		s.h.decisions().Record("", Store, s.kind.command(), shadow.Guard)
		return
	}
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.ctx.Err() == nil {
		s.handler(ctx, msg)
	}
}

func (s *Subscription) report(err error) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	if s.onError != nil {
		s.onError(err)
		return
	}
	slog.Default().Warn("slredis: pub/sub subscription error, retrying", "err", err)
}

// shutdown stops the subscription for reason err (nil: Close) and closes
// its connections, which ends every subscription they hold.
func (s *Subscription) shutdown(err error) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped, s.err = true, err
	legs := s.legs
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, l := range legs {
		if e := l.ps.Close(); e != nil && !errors.Is(e, redis.ErrClosed) {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// Unsubscribe unsubscribes from names (channels or patterns, as given to
// Subscribe, PSubscribe or SSubscribe) and from their shadow twins, or from
// everything when names is empty. The subscription keeps running, with
// what is left, until it is closed.
func (s *Subscription) Unsubscribe(ctx context.Context, names ...string) error {
	var errs []error
	for _, l := range s.legs {
		wire := make([]string, len(names))
		for i, n := range names {
			wire[i] = s.wireName(l.shadow, n)
		}
		var err error
		switch s.kind {
		case kindPatterns:
			err = l.ps.PUnsubscribe(ctx, wire...)
		case kindShard:
			err = l.ps.SUnsubscribe(ctx, wire...)
		default:
			err = l.ps.Unsubscribe(ctx, wire...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slredis: unsubscribing %s: %w", side(l.shadow), err))
		}
	}
	return errors.Join(errs...)
}

// Close ends the subscription: it closes its connections (which
// unsubscribes everything) and stops the receive loops. It does not wait
// for a handler call in progress (Close may be called from the handler);
// [Subscription.Done] is closed when the last one has returned. Closing
// twice is a no-op.
func (s *Subscription) Close() error {
	s.after()
	return s.shutdown(nil)
}

// Done is closed when the subscription has ended (Close, ctx done, or the
// client closed) and no handler call is running.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: nil while it runs and after
// Close, the context's error when ctx was done, or the error that stopped
// it (wrapping redis.ErrClosed when the client was closed).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func dedupe(names []string) []string {
	out := make([]string, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
