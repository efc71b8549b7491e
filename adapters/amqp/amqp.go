package amqp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Header names (AMQP table keys) the mark travels under. Written exactly
// like this; read ignoring ASCII case.
const (
	HeaderRun = "X-Shadowlane-Run"
	HeaderEnv = "X-Shadowlane-Env"
)

// Store is the store name on every [*shadow.Error] and decision counter.
const Store = "amqp"

// DefaultFallbackRun is the run id of a delivery from a shadow queue that
// carries no run header: the queue alone makes it load-test traffic.
const DefaultFallbackRun = "unattributed"

// Handler handles one delivery; ctx carries its mark. nil acks the delivery,
// an error nacks it with requeue (it is delivered again).
type Handler func(ctx context.Context, d *amqp091.Delivery) error

// RefusedFunc is told about a delivery refused for malformed mark headers,
// before it is nacked without requeue (so the queue's dead-letter exchange,
// if any, gets it). ctx carries no mark.
type RefusedFunc func(ctx context.Context, d *amqp091.Delivery, err error)

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	naming      shadow.Naming
	all         bool
	exchanges   map[string]struct{}
	queues      map[string]struct{}
	env         string
	lanes       envtag.Lanes
	refused     RefusedFunc
	requeueBad  bool
	fallbackRun string
}

func addSet(m *map[string]struct{}, names []string) {
	if *m == nil {
		*m = map[string]struct{}{}
	}
	for _, n := range names {
		(*m)[n] = struct{}{}
	}
}

// WithShadowExchanges names production exchanges that have a shadow twin.
// A marked publish to any other exchange is refused with
// [shadow.ErrNoShadowTarget].
func WithShadowExchanges(names ...string) Option {
	return optionFunc(func(c *config) { addSet(&c.exchanges, names) })
}

// WithShadowQueues names production queues that have a shadow twin: the
// queues a marked publish through the default exchange ("") may address,
// and the queues whose consumers get a shadow consumer.
func WithShadowQueues(names ...string) Option {
	return optionFunc(func(c *config) { addSet(&c.queues, names) })
}

// WithAll declares that every exchange and queue has a shadow twin.
func WithAll() Option { return optionFunc(func(c *config) { c.all = true }) }

// WithNaming sets how shadow exchange and queue names are derived (default
// [shadow.DefaultTopic], suffix "_shadow").
func WithNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.naming = n }) }

// WithEnv makes this instance a lane instance of env: it consumes
// "<queue>-<env>" (declared by [Shadow.Declare]) and handles only messages
// tagged env.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.env = env }) }

// WithLanes tells trunk consumers (keyed by production queue name) which
// environments have a live lane consumer; their messages are acked and
// skipped by the trunk, since the lane queue got its own copy.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.lanes = l }) }

// WithRefused sets a callback for deliveries refused for malformed mark
// headers.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithRequeueRefused nacks refused deliveries with requeue instead of
// dead-lettering them (for a fix-and-retry workflow; they are never
// handled either way).
func WithRequeueRefused() Option { return optionFunc(func(c *config) { c.requeueBad = true }) }

// WithFallbackRun sets the run id of deliveries from a shadow queue without
// a run header (default [DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.fallbackRun = run })
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("shadowlane/amqp: invalid configuration")

// Shadow applies shadowlane's rules to amqp091-go channels. It is immutable
// and safe for concurrent use.
type Shadow struct{ c config }

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{naming: shadow.DefaultTopic, fallbackRun: DefaultFallbackRun}
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.naming.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.env != "" && !propagation.ValidID(c.env) {
		return nil, fmt.Errorf("%w: env %q is not a valid id", ErrConfig, c.env)
	}
	if !propagation.ValidID(c.fallbackRun) {
		return nil, fmt.Errorf("%w: fallback run %q is not a valid id", ErrConfig, c.fallbackRun)
	}
	for _, set := range []map[string]struct{}{c.exchanges, c.queues} {
		for n := range set {
			if n == "" || c.naming.IsShadow(n) {
				return nil, fmt.Errorf("%w: %q is empty or already a shadow name", ErrConfig, n)
			}
		}
	}
	return &Shadow{c: c}, nil
}

// ShadowName returns the shadow name of an exchange or queue.
func (s *Shadow) ShadowName(name string) string { return s.c.naming.Shadow(name) }

func (s *Shadow) hasExchange(name string) bool {
	if name == "" || s.c.naming.IsShadow(name) {
		return false
	}
	_, ok := s.c.exchanges[name]
	return s.c.all || ok
}

func (s *Shadow) hasQueue(name string) bool {
	if name == "" || s.c.naming.IsShadow(name) {
		return false
	}
	_, ok := s.c.queues[name]
	return s.c.all || ok
}

// laneQueue is queue for the trunk and "<queue>-<env>" for a lane.
func (s *Shadow) laneQueue(q string) string {
	if s.c.env == "" {
		return q
	}
	return q + "-" + s.c.env
}

// tableMark reads the mark from a header table. Values must be strings (or
// byte slices) holding valid ids; two keys differing only in case must
// agree.
func tableMark(t amqp091.Table) (m propagation.Mark, bad string) {
	var seenRun, seenEnv bool
	for k, v := range t {
		var dst *string
		var seen *bool
		switch {
		case strings.EqualFold(k, HeaderRun):
			dst, seen, bad = &m.Run, &seenRun, HeaderRun
		case strings.EqualFold(k, HeaderEnv):
			dst, seen, bad = &m.Env, &seenEnv, HeaderEnv
		default:
			continue
		}
		var sv string
		switch x := v.(type) {
		case string:
			sv = x
		case []byte:
			sv = string(x)
		default:
			return propagation.Mark{}, bad
		}
		if !propagation.ValidID(sv) || (*seen && sv != *dst) {
			return propagation.Mark{}, bad
		}
		*dst, *seen = sv, true
	}
	return m, ""
}
