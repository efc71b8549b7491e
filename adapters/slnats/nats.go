package slnats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Store is the store name on every [*shadow.Error] and decision counter of
// this package.
const Store = "nats"

// DefaultMaxDeliver is the MaxDeliver [Shadow.ConsumeJetStream] gives a
// consumer configured without one.
const DefaultMaxDeliver = 5

// Handler handles one received message; ctx carries its mark.
type Handler func(ctx context.Context, m *natsgo.Msg)

// RefusedFunc is told about a received message that is refused: its mark
// headers are malformed or it carries a run mark on a production subject
// (err wraps a [*shadow.Error]; ctx carries no mark), a core NATS message
// that arrived while the kill switch was off (err wraps
// [shadow.ErrKillSwitch]: core NATS cannot hold it back), or a JetStream
// message whose handler failed on its last delivery (err wraps
// [ErrDeliveriesExhausted]; ctx carries its mark). The message is never
// handled. It is told once: lanes skip their copy of what the trunk refuses.
type RefusedFunc func(ctx context.Context, m *natsgo.Msg, err error)

// ErrDeliveriesExhausted is wrapped by the error a [RefusedFunc] gets for
// a JetStream message whose handler failed on its last delivery.
var ErrDeliveriesExhausted = errors.New("slnats: handler failed on every delivery")

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	bus      bus.Config // subjects
	names    shadow.Naming
	queues   shadow.Naming
	patterns [][]string
	refused  RefusedFunc
	rt       *shadowlane.Runtime
	poll     time.Duration
	err      error

	laneBucket string
	laneErrors func(error)
}

// WithShadowSubjects names the production subjects that have a shadow twin,
// as NATS subject patterns ("orders.created", "orders.*", "orders.>"). A
// marked message for a subject no pattern matches is refused with
// [shadow.ErrNoShadowTarget]; a subscription gets a shadow twin only when
// its subject lies entirely inside one pattern.
func WithShadowSubjects(patterns ...string) Option {
	return optionFunc(func(c *config) {
		for _, p := range patterns {
			toks, ok := tokens(p)
			if !ok {
				c.err = fmt.Errorf("%w: bad subject pattern %q", ErrConfig, p)
				return
			}
			c.patterns = append(c.patterns, toks)
		}
	})
}

// WithAll declares that every production subject has a shadow twin.
func WithAll() Option { return optionFunc(func(c *config) { c.bus.Names.SetAll() }) }

// WithNaming sets how shadow subjects are derived (default
// [shadow.DefaultSubject], prefix "shadow."). The naming must keep subjects
// valid: a prefix ending in "." is the usual choice.
func WithNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.bus.Naming = n }) }

// WithStreamNaming sets how JetStream stream and durable consumer names
// are shadowed (default suffix "_shadow": those names cannot contain '.').
func WithStreamNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.names = n }) }

// WithGroupNaming sets how shadow queue groups are named (default
// [shadow.DefaultGroup]).
func WithGroupNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.queues = n }) }

// WithEnv sets the environment of this instance. A non-empty env makes every
// subscription a lane subscription: queue groups become "<queue>-<env>",
// durable consumers "<name>-<env>" (created to deliver only new messages),
// and only messages tagged env are handled. Empty (the default) is the
// trunk.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.bus.Env = env }) }

// WithLanes tells subscriptions which environments have a live lane
// consumer of their own (asked with the queue group, durable name or, for a
// plain subscription, the subject): the trunk skips their messages; a lane
// instance whose env is not listed takes nothing. On JetStream, ownership
// follows the lane epochs in [WithLaneBucket]'s bucket (see the package
// doc): a lane that leaves stops pulling and naks what it holds, and the
// trunk hands its backlog over. Give the trunk and every lane instance the
// same lanes.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.bus.Lanes = l }) }

// WithRefused sets a callback for refused messages (a dead-letter
// publisher, say). They are always counted as blocks and never handled;
// JetStream messages are terminated.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithFallbackRun sets the run id of messages received on a shadow subject
// without a run header (default [bus.DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.bus.FallbackRun = run })
}

// WithRuntime takes the kill switch from rt: while rt says load-test
// traffic is off, JetStream consumers hold marked messages back (they are
// not acknowledged, and consumption pauses) and handle them once it is on
// again; core NATS subscriptions, which cannot hold a message, refuse them.
// Default: the default runtime ([shadowlane.Default]), looked up per
// message.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("slnats: invalid configuration")

// Shadow applies shadowlane's rules (package shadow/bus) to NATS
// publishers and subscribers. It is immutable and safe for concurrent use.
type Shadow struct {
	c   config
	r   *bus.Rules
	obs shadowlane.BusObserver // delivery counts, per-run evidence
}

// Stats returns what the JetStream consumers of s counted: messages
// handed over from a left lane's backlog, and messages handled on a
// redelivery they did not ask for (a crash or a lost acknowledgement:
// every at-least-once duplicate is among them).
func (s *Shadow) Stats() bus.Stats { return s.obs.Snapshot() }

// decisions is the series of the adapter's runtime.
func (s *Shadow) decisions() *shadow.Series { return shadowlane.OrDefault(s.c.rt).Decisions() }

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		bus:    bus.Config{Store: Store, Kind: "subject", Naming: shadow.DefaultSubject},
		names:  shadow.Naming{Suffix: "_shadow"},
		queues: shadow.DefaultGroup,
		poll:   50 * time.Millisecond,

		laneBucket: DefaultLaneBucket,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.err != nil {
		return nil, c.err
	}
	for what, n := range map[string]shadow.Naming{"stream": c.names, "group": c.queues} {
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s naming: %w", ErrConfig, what, err)
		}
	}
	if strings.ContainsAny(c.names.Prefix+c.names.Suffix, ". *>/\\") {
		return nil, fmt.Errorf("%w: stream/consumer naming %+v contains a character JetStream names forbid", ErrConfig, c.names)
	}
	for _, p := range c.patterns {
		if c.bus.Naming.IsShadow(strings.Join(p, ".")) {
			return nil, fmt.Errorf("%w: shadow subject pattern %q is already a shadow subject", ErrConfig, strings.Join(p, "."))
		}
	}
	patterns := c.patterns
	c.bus.Names.SetMatch(func(sub string) bool {
		for _, p := range patterns {
			if subset(sub, p) {
				return true
			}
		}
		return false
	})
	shadowlane.BindBus(c.rt, &c.bus)
	s := &Shadow{c: c, obs: shadowlane.NewBusObserver(c.rt, Store)}
	c.bus.Target = func(prod string) string { return firstToken(prod) }
	r, err := bus.New(c.bus)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s.c, s.r = c, r
	return s, nil
}

// Rules returns the message-system rules of subjects.
func (s *Shadow) Rules() *bus.Rules { return s.r }

// ShadowSubject returns the shadow twin of a production subject (or
// subscription pattern) and whether it has one configured.
func (s *Shadow) ShadowSubject(subject string) (string, bool) {
	if !s.covered(subject) {
		return "", false
	}
	return s.r.ShadowName(subject), true
}

// IsShadowSubject reports whether subject is a shadow subject.
func (s *Shadow) IsShadowSubject(subject string) bool { return s.r.IsShadow(subject) }

// covered reports whether every subject matching sub (a subject or a
// pattern) lies inside a configured pattern.
func (s *Shadow) covered(sub string) bool { return s.r.Has(sub) }

// tokens splits a subject or pattern; it rejects empty tokens and a '>'
// that is not the last token.
func tokens(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	t := strings.Split(s, ".")
	for i, x := range t {
		if x == "" || (x == ">" && i != len(t)-1) || strings.ContainsAny(x, " \t\r\n") {
			return nil, false
		}
		if len(x) > 1 && strings.ContainsAny(x, "*>") {
			return nil, false
		}
	}
	return t, true
}

// subset reports whether every subject matched by sub is matched by
// pattern p. It does not allocate.
func subset(sub string, p []string) bool {
	i := 0
	for rest := sub; ; i++ {
		var tok string
		dot := strings.IndexByte(rest, '.')
		if dot < 0 {
			tok = rest
		} else {
			tok = rest[:dot]
		}
		if i >= len(p) {
			return false
		}
		switch p[i] {
		case ">":
			return tok != ""
		case "*":
			if tok == "" || tok == ">" {
				return false
			}
		default:
			if tok != p[i] {
				return false
			}
		}
		if dot < 0 {
			return i == len(p)-1
		}
		rest = rest[dot+1:]
	}
}

// decode feeds the mark headers (any letter case) to a decoder; a mark
// header present without a value is malformed.
func decode(h natsgo.Header) bus.Decoder {
	var d bus.Decoder
	for k, vs := range h {
		f := bus.FieldOf(k)
		if f == bus.NoField {
			continue
		}
		if len(vs) == 0 {
			d.Malformed(f)
		}
		for _, v := range vs {
			d.Add(f, v, true)
		}
	}
	return d
}

// Mark returns the mark of a received message: its headers (the rules of
// package shadow/bus), or for a message on a shadow subject without a run
// header the fallback run. A malformed header ([shadow.ErrUnsupported]) and
// a run mark on a production subject (an anomaly, [shadow.ErrBlocked]) are
// a [*shadow.Error].
func (s *Shadow) Mark(subject string, h natsgo.Header) (propagation.Mark, error) {
	d := decode(h)
	return s.r.MarkOf(subject, &d)
}

// Takes reports whether a subscriber of this Shadow's environment takes a
// message marked m; consumer is the queue group, durable name or subject
// the lanes are keyed by.
func (s *Shadow) Takes(consumer string, m propagation.Mark) bool { return s.r.Takes(consumer, m) }

// laneName is name for the trunk and "<name>-<env>" for a lane.
func (s *Shadow) laneName(name string) string { return s.r.LaneName(name) }

// firstToken is the low-cardinality counter target of a production subject:
// its first token (subjects often embed ids).
func firstToken(prod string) string {
	if i := strings.IndexByte(prod, '.'); i >= 0 {
		return prod[:i]
	}
	return prod
}
