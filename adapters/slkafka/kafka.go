package slkafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Store is the store name on every [*shadow.Error] and decision counter of
// this package.
const Store = "kafka"

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
var ErrRetriesExhausted = errors.New("slkafka: handler failed on every attempt")

// Option configures a [Shadow] ([New]) or a [ProduceLimiter]
// ([NewProduceLimiter]).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	bus      bus.Config
	groups   bus.Groups
	refused  RefusedFunc
	retry    bus.Retry
	fetchErr FetchErrorFunc
	rt       *shadowlane.Runtime
	poll     time.Duration
	limiter  *limiter.Limiter // NewProduceLimiter
	failure  func(error) bool // NewProduceLimiter
}

// WithShadowTopics names production topics that have a shadow twin. A marked
// record for any other topic is refused with [shadow.ErrNoShadowTarget].
// May be given several times; the sets add up.
func WithShadowTopics(topics ...string) Option {
	return optionFunc(func(c *config) { c.bus.Names.Add(topics...) })
}

// WithAll declares that every production topic has a shadow twin.
func WithAll() Option { return optionFunc(func(c *config) { c.bus.Names.SetAll() }) }

// WithNaming sets how shadow topic names are derived
// (default [shadow.DefaultTopic], suffix "_shadow").
func WithNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.bus.Naming = n })
}

// WithGroupNaming sets how shadow consumer group names are derived
// (default [shadow.DefaultGroup], suffix "_shadow").
func WithGroupNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.groups.Naming = n })
}

// WithShadowGroups names the consumer groups that get a shadow consumer
// (shadow group on the shadow twins of their shadowed topics) beside the
// production one. Groups not named here never consume shadow topics.
func WithShadowGroups(groups ...string) Option {
	return optionFunc(func(c *config) { c.groups.Shadowed.Add(groups...) })
}

// WithRuntime names the runtime the Shadow and the [ProduceLimiter] work
// for. A Shadow takes the kill switch from rt: while rt says load-test
// traffic is off, consumers hold marked records back (uncommitted) and
// handle them once it is on again. A ProduceLimiter admits records through
// rt's limiter (rules from its "limits:" section). Default: the default
// runtime ([shadowlane.Default]), looked up per record.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// WithEnv sets the environment of this instance. A non-empty env makes every
// consumer a lane consumer: its group is "<group>-<env>" and it takes only
// records tagged with env. Empty (the default) is the trunk.
func WithEnv(env string) Option { return optionFunc(func(c *config) { c.bus.Env = env }) }

// WithLanes tells consumers which environments have a live lane consumer
// of their own (keyed by production group): the trunk skips their records;
// a lane instance whose env is not (or no longer) listed takes nothing and
// hands back what it has not committed. Without it the trunk takes every
// record and lane instances are always live.
func WithLanes(l envtag.Lanes) Option { return optionFunc(func(c *config) { c.bus.Lanes = l }) }

// WithRefused sets what happens to a consumed record that is refused: its
// mark headers are malformed, or it carries a run mark on a production
// topic (an anomaly). It is counted as a block, once (by the trunk
// consumer; lanes skip their copy), and never handled. By default it is
// then skipped.
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
	return optionFunc(func(c *config) { c.retry = bus.Retry{Attempts: attempts, Backoff: backoff, MaxBackoff: maxBackoff} })
}

// WithFetchErrors sets a callback for the errors franz-go reports in polls
// (broker, authorization or partition errors it keeps retrying). By default
// they are ignored.
func WithFetchErrors(f FetchErrorFunc) Option { return optionFunc(func(c *config) { c.fetchErr = f }) }

// WithFallbackRun sets the run id of records consumed from a shadow topic
// without a run header (default [bus.DefaultFallbackRun]).
func WithFallbackRun(run string) Option {
	return optionFunc(func(c *config) { c.bus.FallbackRun = run })
}

// ErrConfig is wrapped by the error [New] returns for a bad configuration.
var ErrConfig = errors.New("slkafka: invalid configuration")

// Shadow applies shadowlane's rules to franz-go producers and consumers:
// marked records go to shadow topics with the mark in headers, consumed
// records carry their mark into the handler's context, and lane consumers
// take only their environment's records. A Shadow is immutable and safe for
// concurrent use.
type Shadow struct {
	c   config
	r   *bus.Rules
	obs shadowlane.BusObserver // delivery counts, per-run evidence
}

// New builds a Shadow. It fails when a naming is empty or a name is invalid.
func New(opts ...Option) (*Shadow, error) {
	c := config{
		bus:    bus.Config{Store: Store, Kind: "topic", Naming: shadow.DefaultTopic},
		groups: bus.Groups{Naming: shadow.DefaultGroup},
		poll:   50 * time.Millisecond,
	}
	for _, o := range opts {
		o.apply(&c)
	}
	shadowlane.BindBus(c.rt, &c.bus)
	r, err := bus.NewGrouped(c.bus, c.groups, c.retry)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &Shadow{c: c, r: r, obs: shadowlane.NewBusObserver(c.rt, Store)}, nil
}

// Stats returns what this Shadow's consumers counted around commits and
// lane hand-overs (see [bus.Stats]): among them the at-least-once
// duplicates a failed commit causes.
func (s *Shadow) Stats() bus.Stats { return s.obs.Snapshot() }

// Rules returns the message-system rules this Shadow applies.
func (s *Shadow) Rules() *bus.Rules { return s.r }

// ShadowTopic returns the shadow twin of a production topic and whether the
// topic has one configured.
func (s *Shadow) ShadowTopic(topic string) (string, bool) { return s.r.Shadow(topic) }

// ProductionTopic returns the production topic a topic stands for: the
// topic itself, or the production twin of a shadow topic.
func (s *Shadow) ProductionTopic(topic string) string { return s.r.Production(topic) }
