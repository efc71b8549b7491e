package slredis

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/shadow"
)

// Option configures a [Hook] ([NewHook], [Instrument]) or a [LimitHook]
// ([NewLimitHook]).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	naming    shadow.Naming
	namingSet bool
	client    redis.UniversalClient
	clientSet bool
	strict    bool
	maxTTL    time.Duration
	guardOff  bool
	rt        *shadowlane.Runtime
	limiter   *limiter.Limiter // NewLimitHook
	failure   func(error) bool // NewLimitHook
}

// WithKeyNaming sets how marked commands rename keys, patterns and
// channels (key mode). The default, without WithShadowClient, is
// [shadow.DefaultKey] (prefix "shadow:"). A naming that fails
// [shadow.Naming.Validate] makes every marked command fail with
// [shadow.ErrNoShadowTarget]. With WithShadowClient, a naming renames keys
// on the shadow instance too.
func WithKeyNaming(n shadow.Naming) Option {
	return optionFunc(func(c *config) { c.naming, c.namingSet = n, true })
}

// WithShadowClient sends every marked command to c, a client of a separate
// shadow instance or database (instance mode); see [ShadowDB] for a DB
// index on the same server. A nil client makes every marked command fail
// with [shadow.ErrNoShadowTarget]. Do not add the hook to c as well.
func WithShadowClient(c redis.UniversalClient) Option {
	return optionFunc(func(cfg *config) { cfg.client, cfg.clientSet = c, true })
}

// WithStrictScripts refuses EVAL, EVALSHA and FCALL (and their _RO forms)
// for marked traffic, since a script can touch keys it does not declare. By
// default their declared keys are renamed. The config field
// redis.scripts: refuse (see [WithRuntime]) does the same from config.
func WithStrictScripts() Option { return optionFunc(func(c *config) { c.strict = true }) }

// WithRuntime names the runtime a hook works for. A [Hook] takes the
// settings of the "redis:" config section from rt: with redis.scripts:
// refuse, marked scripts are refused as with [WithStrictScripts]. A
// [LimitHook] admits commands through rt's limiter (rules from its
// "limits:" section). Both read rt per command, so a config reload applies
// at once. Without this option (or with nil) hooks use the default
// runtime, the one [shadowlane.Init] sets.
func WithRuntime(rt *shadowlane.Runtime) Option { return optionFunc(func(c *config) { c.rt = rt }) }

// WithMaxTTL bounds the life of shadow keys: after every marked command
// that writes keys, each written key gets PEXPIRE d LT (Redis 7+), so a
// shadow key never lives longer than d after its last write and keeps a
// shorter TTL it already has. Zero (the default) sets no bound.
func WithMaxTTL(d time.Duration) Option { return optionFunc(func(c *config) { c.maxTTL = d }) }

// WithoutGuard turns off the two-way guard, which by default refuses
// production (unmarked) commands that name a shadow key, channel or pattern
// and removes shadow names from production KEYS, SCAN and PUBSUB CHANNELS
// replies.
func WithoutGuard() Option { return optionFunc(func(c *config) { c.guardOff = true }) }
