package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Header names the mark travels under in Kafka record headers. They are
// written exactly like this; on read the comparison ignores ASCII case.
const (
	HeaderRun = "X-Shadowlane-Run"
	HeaderEnv = "X-Shadowlane-Env"
)

// Store is the store name on every [*shadow.Error] and decision counter of
// this package.
const Store = "kafka"

// DefaultFallbackRun is the run id given to a record consumed from a shadow
// topic that carries no run header: the topic alone proves it is load-test
// traffic, so it is never handled as production.
const DefaultFallbackRun = "unattributed"

// Handler handles one consumed record. ctx carries the record's mark
// (see [propagation.FromContext]). Returning an error stops the consumer
// without committing the record, so it is delivered again after a restart,
// unless [WithRetry] is set: then the record is tried again, and after the
// last attempt it goes to the [WithRefused] callback.
type Handler func(ctx context.Context, r *kgo.Record) error

// RefusedFunc is told about a consumed record that is not handled: its
// mark headers are malformed (err wraps [shadow.ErrUnsupported]; ctx
// carries no mark), or its handler failed on every attempt of [WithRetry]
// (err wraps [ErrRetriesExhausted] and the handler's last error; ctx
// carries the record's mark, so a dead-letter producer under it sends a
// load-test record to the shadow twin of the dead-letter topic). Returning
// nil lets the consumer commit past the record (it was dead-lettered or may
// be dropped); returning an error stops the consumer without committing it.
type RefusedFunc func(ctx context.Context, r *kgo.Record, err error) error

// FetchErrorFunc is told about an error franz-go returned in a poll for a
// partition of a consumer group (topic and partition may be empty and -1
// for an error of the client as a whole). franz-go keeps retrying; nothing
// is committed for a partition that errored, so nothing is lost.
type FetchErrorFunc func(group, topic string, partition int32, err error)

// ErrRetriesExhausted is wrapped by the error a [RefusedFunc] gets for a
// record whose handler failed on every attempt of [WithRetry].
var ErrRetriesExhausted = errors.New("shadowlane/kafka: handler failed on every attempt")

// Option configures a [Shadow].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	topicNaming shadow.Naming
	groupNaming shadow.Naming
	allTopics   bool
	topics      map[string]struct{}
	groups      map[string]struct{}
	env         string
	lanes       envtag.Lanes
	refused     RefusedFunc
	fallbackRun string
	attempts    int
	backoff     time.Duration
	maxBackoff  time.Duration
	fetchErr    FetchErrorFunc
}

// WithShadowTopics names production topics that have a shadow twin. A marked
// record for any other topic is refused with [shadow.ErrNoShadowTarget].
// May be given several times; the sets add up.
func WithShadowTopics(topics ...string) Option {
	return optionFunc(func(c *config) {
		if c.topics == nil {
			c.topics = map[string]struct{}{}
		}
		for _, t := range topics {
			c.topics[t] = struct{}{}
		}
	})
}

// WithAllTopics declares that every production topic has a shadow twin.
func WithAllTopics() Option { return optionFunc(func(c *config) { c.allTopics = true }) }

// WithTopicNaming sets how shadow topic names are derived
// (default [shadow.DefaultTopic], suffix "_shadow").
func WithTopicNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.topicNaming = n })
}

// WithGroupNaming sets how shadow consumer group names are derived
// (default [shadow.DefaultGroup], suffix "_shadow").
func WithGroupNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.groupNaming = n })
}

// WithShadowGroups names the consumer groups that get a shadow consumer
// (shadow group on the shadow twins of their shadowed topics) beside the
// production one. Groups not named here never consume shadow topics.
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
// records tagged with env. Empty (the default) is the trunk.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.env = env }) }

// WithLanes tells trunk consumers which environments have a live lane
// consumer of their own; their records are skipped by the trunk. Without it
// the trunk takes every record.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.lanes = l }) }

// WithRefused sets what happens to a consumed record whose mark headers are
// malformed. By default it is counted as a block and skipped.
func WithRefused(f RefusedFunc) Option { return optionFunc(func(c *config) { c.refused = f }) }

// WithRetry makes a consumer try a record whose handler failed again, up
// to attempts times in all, waiting backoff before the second attempt and
// twice as long before each next one, at most maxBackoff (0: no cap). The
// record's partition waits meanwhile (order is kept) and rebalances are
// held back, so keep the total wait well under the group's session and
// rebalance timeouts. A record that failed on every attempt goes to the
// [WithRefused] callback with an error wrapping [ErrRetriesExhausted];
// without a callback it stops the consumer uncommitted, as without retries.
// When the consumer stops during a wait, the record is not committed.
func WithRetry(attempts int, backoff, maxBackoff time.Duration) Option {
	return optionFunc(func(c *config) { c.attempts, c.backoff, c.maxBackoff = attempts, backoff, maxBackoff })
}

// WithFetchErrors sets a callback for the errors franz-go reports in polls
// (broker, authorization or partition errors it keeps retrying). By default
// they are ignored.
func WithFetchErrors(f FetchErrorFunc) Option { return optionFunc(func(c *config) { c.fetchErr = f }) }

// WithFallbackRun sets the run id of records consumed from a shadow topic
// without a run header (default [DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.fallbackRun = run })
}

// ErrConfig is wrapped by the error [New] returns for a bad configuration.
var ErrConfig = errors.New("shadowlane/kafka: invalid configuration")

// Shadow applies shadowlane's rules to franz-go producers and consumers:
// marked records go to shadow topics with the mark in headers, consumed
// records carry their mark into the handler's context, and lane consumers
// take only their environment's records. A Shadow is immutable and safe for
// concurrent use.
type Shadow struct{ c config }

// New builds a Shadow. It fails when a naming is empty or a name is invalid.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		topicNaming: shadow.DefaultTopic,
		groupNaming: shadow.DefaultGroup,
		fallbackRun: DefaultFallbackRun,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.topicNaming.Validate(); err != nil {
		return nil, fmt.Errorf("%w: topic naming: %w", ErrConfig, err)
	}
	if err := c.groupNaming.Validate(); err != nil {
		return nil, fmt.Errorf("%w: group naming: %w", ErrConfig, err)
	}
	if c.env != "" && !propagation.ValidID(c.env) {
		return nil, fmt.Errorf("%w: env %q is not a valid id", ErrConfig, c.env)
	}
	if c.attempts < 0 || c.backoff < 0 || c.maxBackoff < 0 || (c.maxBackoff > 0 && c.maxBackoff < c.backoff) {
		return nil, fmt.Errorf("%w: retry attempts %d, backoff %s, max %s: want attempts >= 0 and 0 <= backoff <= max (or max 0)", ErrConfig, c.attempts, c.backoff, c.maxBackoff)
	}
	if !propagation.ValidID(c.fallbackRun) {
		return nil, fmt.Errorf("%w: fallback run %q is not a valid id", ErrConfig, c.fallbackRun)
	}
	for t := range c.topics {
		if t == "" || c.topicNaming.IsShadow(t) {
			return nil, fmt.Errorf("%w: shadow topic list names %q, which is empty or already a shadow name", ErrConfig, t)
		}
	}
	for g := range c.groups {
		if g == "" || c.groupNaming.IsShadow(g) {
			return nil, fmt.Errorf("%w: shadow group list names %q, which is empty or already a shadow name", ErrConfig, g)
		}
	}
	return &Shadow{c: c}, nil
}

// ShadowTopic returns the shadow twin of a production topic and whether the
// topic has one configured.
func (s *Shadow) ShadowTopic(topic string) (string, bool) {
	if !s.hasShadow(topic) {
		return "", false
	}
	return s.c.topicNaming.Shadow(topic), true
}

// ProductionTopic returns the production topic a topic stands for: the
// topic itself, or the production twin of a shadow topic.
func (s *Shadow) ProductionTopic(topic string) string {
	p, _ := s.c.topicNaming.Production(topic)
	return p
}

func (s *Shadow) hasShadow(topic string) bool {
	if topic == "" || s.c.topicNaming.IsShadow(topic) {
		return false
	}
	if s.c.allTopics {
		return true
	}
	_, ok := s.c.topics[topic]
	return ok
}

// isHeader reports whether key equals name ignoring ASCII case.
func isHeader(key, name string) bool { return strings.EqualFold(key, name) }
