package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"

	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Header names the mark travels under. NATS headers are case-sensitive:
// they are written exactly like this and read exactly like this or in
// lower case.
const (
	HeaderRun = "X-Shadowlane-Run"
	HeaderEnv = "X-Shadowlane-Env"

	headerRunLower = "x-shadowlane-run"
	headerEnvLower = "x-shadowlane-env"
)

// Store is the store name on every [*shadow.Error] and decision counter of
// this package.
const Store = "nats"

// DefaultFallbackRun is the run id given to a message received on a shadow
// subject without a run header: the subject alone makes it load-test
// traffic, so it is never handled as production.
const DefaultFallbackRun = "unattributed"

// Handler handles one received message; ctx carries its mark.
type Handler func(ctx context.Context, m *natsgo.Msg)

// RefusedFunc is told about a received message that was refused because its
// mark headers are malformed. ctx carries no mark. The message is never
// handled.
type RefusedFunc func(ctx context.Context, m *natsgo.Msg, err error)

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	subjects    shadow.Naming
	names       shadow.Naming
	queues      shadow.Naming
	all         bool
	patterns    [][]string
	env         string
	lanes       envtag.Lanes
	refused     RefusedFunc
	fallbackRun string
	err         error
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

// WithAllSubjects declares that every production subject has a shadow twin.
func WithAllSubjects() Option { return optionFunc(func(c *config) { c.all = true }) }

// WithSubjectNaming sets how shadow subjects are derived (default
// [shadow.DefaultSubject], prefix "shadow."). The naming must keep subjects
// valid: a prefix ending in "." is the usual choice.
func WithSubjectNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.subjects = n })
}

// WithNameNaming sets how JetStream stream and consumer names are shadowed
// (default suffix "_shadow": those names cannot contain '.').
func WithNameNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.names = n }) }

// WithQueueNaming sets how shadow queue groups are named (default
// [shadow.DefaultGroup]).
func WithQueueNaming(n shadow.Naming) Option { return optionFunc(func(c *config) { c.queues = n }) }

// WithEnv sets the environment of this instance. A non-empty env makes every
// subscription a lane subscription: queue groups become "<queue>-<env>",
// durable consumers "<name>-<env>", and only messages tagged env are
// handled. Empty (the default) is the trunk.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.env = env }) }

// WithLanes tells trunk subscriptions which environments have a live lane
// consumer of their own (asked with the queue group, durable name or, for a
// plain subscription, the subject); their messages are skipped by the trunk.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.lanes = l }) }

// WithRefused sets a callback for received messages whose mark headers are
// malformed (a dead-letter publisher, say). They are always counted as
// blocks and never handled; JetStream messages are terminated.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithFallbackRun sets the run id of messages received on a shadow subject
// without a run header (default [DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.fallbackRun = run })
}

// ErrConfig is wrapped by configuration errors.
var ErrConfig = errors.New("shadowlane/nats: invalid configuration")

// Shadow applies shadowlane's rules to NATS publishers and subscribers. It
// is immutable and safe for concurrent use.
type Shadow struct{ c config }

// New builds a Shadow.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		subjects:    shadow.DefaultSubject,
		names:       shadow.Naming{Suffix: "_shadow"},
		queues:      shadow.DefaultGroup,
		fallbackRun: DefaultFallbackRun,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.err != nil {
		return nil, c.err
	}
	for what, n := range map[string]shadow.Naming{"subject": c.subjects, "name": c.names, "queue": c.queues} {
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s naming: %w", ErrConfig, what, err)
		}
	}
	if strings.ContainsAny(c.names.Prefix+c.names.Suffix, ". *>/\\") {
		return nil, fmt.Errorf("%w: stream/consumer naming %+v contains a character JetStream names forbid", ErrConfig, c.names)
	}
	if c.env != "" && !propagation.ValidID(c.env) {
		return nil, fmt.Errorf("%w: env %q is not a valid id", ErrConfig, c.env)
	}
	if !propagation.ValidID(c.fallbackRun) {
		return nil, fmt.Errorf("%w: fallback run %q is not a valid id", ErrConfig, c.fallbackRun)
	}
	for _, p := range c.patterns {
		if c.subjects.IsShadow(strings.Join(p, ".")) {
			return nil, fmt.Errorf("%w: shadow subject pattern %q is already a shadow subject", ErrConfig, strings.Join(p, "."))
		}
	}
	return &Shadow{c: c}, nil
}

// ShadowSubject returns the shadow twin of a production subject (or
// subscription pattern) and whether it has one configured.
func (s *Shadow) ShadowSubject(subject string) (string, bool) {
	if !s.covered(subject) {
		return "", false
	}
	return s.c.subjects.Shadow(subject), true
}

// IsShadowSubject reports whether subject is a shadow subject.
func (s *Shadow) IsShadowSubject(subject string) bool { return s.c.subjects.IsShadow(subject) }

// covered reports whether every subject matching sub (a subject or a
// pattern) lies inside a configured pattern.
func (s *Shadow) covered(sub string) bool {
	if sub == "" || s.c.subjects.IsShadow(sub) {
		return false
	}
	if s.c.all {
		return true
	}
	for _, p := range s.c.patterns {
		if subset(sub, p) {
			return true
		}
	}
	return false
}

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

// headerMark reads the mark headers (exact or lower-case names). Several
// values that disagree, an empty value or one that is not a valid id make
// the whole mark malformed; bad names the header.
func headerMark(h natsgo.Header) (m propagation.Mark, bad string) {
	if len(h) == 0 {
		return m, ""
	}
	var ok bool
	if m.Run, ok = one(h, HeaderRun, headerRunLower); !ok {
		return propagation.Mark{}, HeaderRun
	}
	if m.Env, ok = one(h, HeaderEnv, headerEnvLower); !ok {
		return propagation.Mark{}, HeaderEnv
	}
	return m, ""
}

func one(h natsgo.Header, k1, k2 string) (string, bool) {
	v := ""
	for _, k := range [2]string{k1, k2} {
		vs, present := h[k]
		if !present {
			continue
		}
		if len(vs) == 0 {
			return "", false
		}
		for _, x := range vs {
			if !propagation.ValidID(x) || (v != "" && x != v) {
				return "", false
			}
			v = x
		}
	}
	return v, true
}

// Mark returns the mark of a received message: its headers, validated, or
// for a message on a shadow subject without a run header the fallback run.
// A malformed header is a [*shadow.Error] wrapping [shadow.ErrUnsupported].
func (s *Shadow) Mark(subject string, h natsgo.Header) (propagation.Mark, error) {
	m, bad := headerMark(h)
	if bad != "" {
		return propagation.Mark{}, shadow.Refuse(Store, subject, "malformed or conflicting "+bad+" header", propagation.Mark{}, shadow.ErrUnsupported)
	}
	if m.Run == "" && s.c.subjects.IsShadow(subject) {
		m.Run = s.c.fallbackRun
	}
	return m, nil
}

// Takes reports whether a subscriber of this Shadow's environment takes a
// message marked m; consumer is the queue group, durable name or subject
// the lanes are keyed by.
func (s *Shadow) Takes(consumer string, m propagation.Mark) bool {
	if s.c.env != "" {
		return m.Env == s.c.env
	}
	return m.Env == "" || s.c.lanes == nil || !s.c.lanes.HasLane(consumer, m.Env)
}

// laneName is name for the trunk and "<name>-<env>" for a lane.
func (s *Shadow) laneName(name string) string {
	if s.c.env == "" || name == "" {
		return name
	}
	return name + "-" + s.c.env
}
