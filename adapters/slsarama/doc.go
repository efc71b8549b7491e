// Package slsarama applies shadowlane's rules to Kafka clients built on
// IBM/sarama (github.com/IBM/sarama).
//
// Sarama messages carry no context, so the mark is applied by a
// context-taking wrapper: [Producer.SendMessage] (or [Shadow.Prepare] before
// any other send) moves a message produced under a load-test mark to the
// shadow twin of its topic (topic + "_shadow") with the X-Shadowlane-Run and
// X-Shadowlane-Env headers ([bus.HeaderRun], [bus.HeaderEnv]), and refuses,
// with a [*shadow.Error], a marked message for a topic without a configured
// twin ([shadow.ErrNoShadowTarget]) and an unmarked message for a shadow
// topic ([shadow.ErrShadowFromProduction]).
//
// The [Shadow] is also a sarama.ProducerInterceptor (add it to
// Config.Producer.Interceptors) that enforces the same rules by the mark
// headers for messages sent without the wrapper; it cannot return an error,
// so it fails a refused message by emptying its topic.
//
// Consume: [Shadow.GroupHandler] wraps a handler as a
// sarama.ConsumerGroupHandler that rebuilds each message's mark into the
// handler's context, applies environment lanes ([WithEnv], [WithLanes]) and
// never hands the handler a message with malformed mark headers: it is
// counted as a block and passed to the [WithRefused] callback (a
// dead-letter producer, say). [Shadow.Consumer] runs the handler in the
// production (or lane) group and, for groups named in [WithShadowGroups]
// only, in the shadow group ([Shadow.ShadowGroup]) on the shadow topics
// ([Shadow.ShadowTopics]) beside it; a handler error stops it without
// marking the message, so the next consumer of the group gets it again.
//
// The rules are those of package shadow/bus, the same for every bus:
// header names in any letter case (two spellings with different values are
// malformed); a run mark on a production topic is an anomaly, refused, never
// handled; a refused message reaches [WithRefused] once, from the trunk's
// group (lane groups skip their copy); a new lane group starts at the
// newest offset, never at the beginning. Kill switch: while the runtime
// ([WithRuntime], default the default runtime) says load-test traffic is
// off, a claim that meets a marked message waits without marking it, and
// handles it once the switch is on again (or leaves it to the next session
// when the session ends); nothing is lost or handled as production.
//
// Lanes, through [Shadow.Consumer] (the rules of package shadow/bus, the
// same as in the franz-go adapter):
//   - Start window: a new lane group's start is pinned at the newest
//     offset with commit metadata that opens the lane's start window; the
//     lane checks its first messages of each partition against the trunk
//     group's commits and passes over (counted, [bus.Stats] StartSkipped)
//     every one the trunk handled before it saw the lane listed, until
//     the first one the trunk skipped. A lane that leaves opens its
//     window again, so when it comes back it passes over what the trunk
//     took while it was away.
//   - Hand-over: a lane instance whose env leaves the [WithLanes] set
//     stops taking messages at once, commits what it marked and leaves its
//     group (handing back what it had not marked); it joins again when the
//     env is back. The trunk marks its messages with the spans of offsets
//     in which it skipped each env ([bus.Skips]), so they travel in its
//     commits and survive a rebalance or a restart; once the env left, the
//     trunk joins the lane's group, handles the env's messages inside those
//     spans from the lane's committed offsets, and leaves. Taking the
//     env's messages again itself, the trunk passes over those below the
//     lane's committed offset (counted, FloorSkipped), such as the lane's
//     messages in a batch redelivered after a crash.
//
// Delivery guarantees: a message is marked only after its handler (or the
// refusal callback) returned nil, so nothing is lost; sarama commits the
// marks in the background. When a session ends, what it handled and could
// not commit is counted ([Shadow.Stats], Uncommitted; OpenTelemetry
// "shadowlane.bus.deliveries"): the next consumer of the group handles it
// again, the documented at-least-once duplicate. A refusal is committed at
// once in the session's generation, retrying a rejected commit up to 3
// times, so it reaches [WithRefused] once (a refusal whose commit failed
// every time is counted, RefusedUncommitted, and reaches it again).
//
// Limits: the count of uncommitted messages is read back from the broker
// after the session ended, so it is a lower bound when the member was
// evicted (a starved process missed its heartbeats) and the next owner
// committed in the meantime; it keeps at most 4,096 spans of
// handled offsets per partition and session (older ones were committed by
// sarama's periodic commits); the hand-over spans must fit the commit
// metadata ([bus.MaxMetadata], counted Unpersisted otherwise); the
// GroupHandler used without a [Consumer] has none of the lane
// coordination (no hand-over, floor or start window).
//
// Per-run evidence ([shadowlane.BusEvidence]; GET /shadowlane/status?run=R
// of the Shadow's runtime): the group handler counts each marked message
// it hands to its handler as an entry "kafka:<production topic>" with the
// group as the route, and a handler that still fails after its attempts as
// an error "kafka handler"; the [Producer] counts a marked message sarama
// fails to send as "kafka publish". Production messages cost nothing here.
//
// # Broker migration
//
// For a move between two buses by dual write (package
// shadow/bus/migrate, config "migration:"), [Producer.Sender] is this bus's
// migrate.Sender: it sends through this adapter's produce rule, so a
// marked message lands on the shadow twin here too; the map names
// topics. [MessageID] reads the message id that ties a message's copies
// together, and [Migrating] wraps a [MessageHandler] so that a migrate.Reader decides which copy is
// handled (pass it to the consumer, so the shadow consumer reads through
// it too).
package slsarama
