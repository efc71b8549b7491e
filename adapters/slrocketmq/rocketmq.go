package slrocketmq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Store is the store name on every [*shadow.Error] and decision counter of
// this package.
const Store = "rocketmq"

// DefaultHold is how long a consumer holds a marked message back while the
// kill switch is off (or a lane instance while its lane is not live) before
// it hands the message back to the broker for a later redelivery
// ([WithHold]).
const DefaultHold = 30 * time.Second

// RefusedFunc is told about a consumed message that is refused and never
// handled: its mark properties are malformed or conflicting (err wraps
// [shadow.ErrUnsupported]) or it carries a run mark on a production topic
// (an anomaly, err wraps [shadow.ErrBlocked]). ctx carries no mark. It is
// told once, by the trunk consumer (lane consumers skip their copy); the
// message is then acknowledged (it was dead-lettered or may be dropped).
type RefusedFunc func(ctx context.Context, m *primitive.MessageExt, err error)

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	bus          bus.Config
	groupNaming  shadow.Naming
	groups       map[string]struct{}
	refused      RefusedFunc
	rt           *shadowlane.Runtime
	hold         time.Duration
	poll         time.Duration
	handoverEnvs []string
}

// WithShadowTopics names production topics that have a shadow twin. A
// marked message for any other topic is refused with
// [shadow.ErrNoShadowTarget]. May be given several times; the sets add up.
// Names are given without the client's namespace.
func WithShadowTopics(topics ...string) Option {
	return optionFunc(func(c *config) { c.bus.Names.Add(topics...) })
}

// WithAll declares that every production topic has a shadow twin.
func WithAll() Option { return optionFunc(func(c *config) { c.bus.Names.SetAll() }) }

// WithNaming sets how shadow topic names are derived (default
// [shadow.DefaultTopic], suffix "_shadow"). RocketMQ topic names allow
// letters, digits, '_', '-', '|' and '%'.
func WithNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.bus.Naming = n }) }

// WithGroupNaming sets how shadow consumer group names are derived
// (default [shadow.DefaultGroup], suffix "_shadow").
func WithGroupNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.groupNaming = n })
}

// WithShadowGroups names the consumer groups that get a shadow consumer (the
// shadow group on the shadow twins of their topics) beside the production
// one ([Shadow.NewPushConsumer]). Groups not named here never consume
// shadow topics.
func WithShadowGroups(groups ...string) Option {
	return optionFunc(func(c *config) {
		if c.groups == nil {
			c.groups = map[string]struct{}{}
		}
		for _, g := range groups {
			c.groups[g] = struct{}{}
		}
	})
}

// WithEnv sets the environment of this instance. A non-empty env makes every
// consumer a lane consumer: its group is "<group>-<env>" and it takes only
// messages tagged env. Empty (the default) is the trunk.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.bus.Env = env }) }

// WithLanes tells consumers which environments have a live lane consumer of
// their own (keyed by production group): the trunk skips their messages; a
// lane instance whose env is not (or no longer) listed takes nothing and
// holds its messages back. Without it the trunk takes every message and
// lane instances are always live.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.bus.Lanes = l }) }

// WithRefused sets a callback for refused messages. They are always counted
// as blocks and never handled.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithFallbackRun sets the run id of messages consumed from a shadow topic
// without a run property (default [bus.DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.bus.FallbackRun = run })
}

// WithRuntime takes the kill switch from rt: while rt says load-test
// traffic is off, consumers hold marked messages back (not handled, not
// acknowledged) and handle them once it is on again. Default: the default
// runtime ([shadowlane.Default]), looked up per message.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// WithHold sets how long a consumer holds a message that must wait (kill
// switch off, lane not live) before it hands it back to the broker, which
// redelivers it later through the group's retry topic (default
// [DefaultHold]). The message is neither handled nor acknowledged meanwhile.
func WithHold(d time.Duration) Option { return optionFunc(func(c *config) { c.hold = d }) }

// ErrConfig is wrapped by the error [New] and the constructors return for
// a bad configuration.
var ErrConfig = errors.New("slrocketmq: invalid configuration")

// Shadow applies shadowlane's rules to rocketmq-client-go producers and
// consumers through their interceptors: marked messages go to shadow topics
// with the mark in properties, consumed messages carry their mark into the
// handler's context, and lane consumers take only their environment's
// messages. A Shadow is immutable and safe for concurrent use.
type Shadow struct {
	c     config
	r     *bus.Rules
	held  *heldSet    // evidence.go
	adopt *adoptLanes // handover.go; nil but for a trunk with lanes
}

// New builds a Shadow. It fails (wrapping [ErrConfig]) when a naming is
// empty or a name is invalid.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		bus:         bus.Config{Store: Store, Kind: "topic", Naming: shadow.DefaultTopic},
		groupNaming: shadow.DefaultGroup,
		hold:        DefaultHold,
		poll:        20 * time.Millisecond,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	shadowlane.BindBus(c.rt, &c.bus)
	if err := validNames(c); err != nil {
		return nil, err
	}
	var adopt *adoptLanes
	switch {
	case len(c.handoverEnvs) > 0 && (c.bus.Lanes == nil || c.bus.Env != ""):
		return nil, fmt.Errorf("%w: WithHandoverEnvs is for a trunk (no WithEnv) with WithLanes", ErrConfig)
	case c.bus.Env == "" && c.bus.Lanes != nil:
		adopt = &adoptLanes{inner: c.bus.Lanes, all: c.handoverEnvs}
		c.bus.Lanes = adopt
	}
	r, err := bus.New(c.bus)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.groupNaming.Validate(); err != nil {
		return nil, fmt.Errorf("%w: group naming: %w", ErrConfig, err)
	}
	if c.hold < 0 {
		return nil, fmt.Errorf("%w: hold %s is negative", ErrConfig, c.hold)
	}
	for g := range c.groups {
		if g == "" || c.groupNaming.IsShadow(g) {
			return nil, fmt.Errorf("%w: shadow group list names %q, which is empty or already a shadow name", ErrConfig, g)
		}
	}
	return &Shadow{c: c, r: r, held: &heldSet{}, adopt: adopt}, nil
}

// validNames checks the namings and names against RocketMQ's name
// characters (letters, digits, '_', '-', '|'; '%' only separates a
// namespace, so it is refused in names and namings).
func validNames(c config) error {
	for what, n := range map[string]shadow.Naming{"topic": c.bus.Naming, "group": c.groupNaming} {
		if !validName(n.Prefix+n.Suffix, true) {
			return fmt.Errorf("%w: %s naming %+v has a character RocketMQ names do not allow", ErrConfig, what, n)
		}
	}
	for _, t := range c.bus.Names.List() {
		if !validName(t, false) {
			return fmt.Errorf("%w: topic %q is not a valid RocketMQ topic name", ErrConfig, t)
		}
	}
	for g := range c.groups {
		if !validName(g, false) {
			return fmt.Errorf("%w: group %q is not a valid RocketMQ group name", ErrConfig, g)
		}
	}
	return nil
}

func validName(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '-', b == '|':
		default:
			return false
		}
	}
	return true
}

// decisions is the series of the adapter's runtime.
func (s *Shadow) decisions() *shadow.Series { return shadowlane.OrDefault(s.c.rt).Decisions() }

func wrapClientErr(what string, err error) error { return fmt.Errorf("slrocketmq: %s: %w", what, err) }

// Rules returns the message-system rules this Shadow applies.
func (s *Shadow) Rules() *bus.Rules { return s.r }

// ShadowTopic returns the shadow twin of a production topic and whether the
// topic has one configured.
func (s *Shadow) ShadowTopic(topic string) (string, bool) { return s.r.Shadow(topic) }

// ProductionTopic returns the production topic a topic stands for: the
// topic itself, or the production twin of a shadow topic.
func (s *Shadow) ProductionTopic(topic string) string { return s.r.Production(topic) }

// ShadowGroup returns the shadow consumer group of a production group (for
// a lane instance, of its lane group "<group>-<env>") and whether group is
// named in [WithShadowGroups].
func (s *Shadow) ShadowGroup(group string) (string, bool) {
	_, ok := s.c.groups[group]
	return s.c.groupNaming.Shadow(s.r.LaneName(group)), ok
}

// splitNamespace splits a client-side topic or group "ns%name" (the
// client's namespace convention) into "ns%" and "name".
func splitNamespace(name string) (ns, bare string) {
	if i := strings.LastIndexByte(name, '%'); i >= 0 {
		return name[:i+1], name[i+1:]
	}
	return "", name
}

// productionGroup returns the production group a consumer group stands for:
// without the namespace, the shadow naming and the lane suffix.
func (s *Shadow) productionGroup(group string) string {
	_, g := splitNamespace(group)
	if p, ok := s.c.groupNaming.Production(g); ok {
		g = p
	}
	if s.r.IsLaneName(g) {
		g = g[:len(g)-len(s.r.Env())-1]
	}
	return g
}
