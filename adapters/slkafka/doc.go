// Package slkafka applies shadowlane's rules to Kafka clients built on
// franz-go (github.com/twmb/franz-go/pkg/kgo).
//
// Produce: a record produced under a load-test mark (see [propagation.With])
// goes to the shadow twin of its topic (by default the topic name plus
// "_shadow", [shadow.DefaultTopic]) and carries the mark in the
// X-Shadowlane-Run and X-Shadowlane-Env record headers ([bus.HeaderRun],
// [bus.HeaderEnv]). Shadow twins are configured per topic
// ([WithShadowTopics], or [WithAll]); a marked record for any other topic is
// refused with a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget] and
// never sent. An unmarked record for a shadow topic is refused with
// [shadow.ErrShadowFromProduction]. Unmarked records keep their topic and
// lose any stale mark headers, at no allocation.
//
// There are two ways to apply the produce rules, best used together:
// [Producer] wraps a client and reports refusals as typed errors; the
// [Shadow] itself is a kgo.HookProduceRecordBuffered (install it with
// kgo.WithHooks), which franz-go runs for every produced record after the
// default topic is applied and before partitioning, so no produce path of the
// client can skip it. A hook cannot return an error, so it fails a refused
// record by emptying its topic (franz-go then fails it before buffering
// with its own "no topic" error; [ProduceError] gives back the typed
// error). With both installed a record is counted once.
//
// Consume: [Shadow.Context] rebuilds a consumed record's mark from its
// headers (validated with [propagation.ValidID]; a record on a shadow topic
// without a run header is still load-test traffic). [Shadow.Consumer] runs a
// handler in the production consumer group and, for groups named in
// [WithShadowGroups], in the shadow group on the shadow topics beside it;
// records are committed only after the handler returned nil. A record whose
// mark headers are malformed, and a record with a run mark on a production
// topic (an anomaly: marked records only go to shadow topics), is never
// handled: it is counted as a block and passed to the [WithRefused]
// callback (a dead-letter producer, say) once, by the trunk consumer (lane
// consumers skip their copy). The rules are those of package
// [github.com/shadowlane/shadowlane/shadow/bus], the same for every bus.
//
// Kill switch: while the runtime ([WithRuntime], default
// [shadowlane.Default]) says load-test traffic is off, a consumer that
// meets a marked record commits what it handled before it, rewinds its
// partitions to the first record not handled, pauses its topics and waits;
// when the switch is on again it resumes there. Nothing is lost, nothing
// is handled while off, and nothing is handled as production.
//
// Failures: by default a handler error stops [Consumer.Run] without
// committing the record. With [WithRetry] the record is tried again, in
// place (its partition waits, order is kept), with a doubling backoff; a
// record that fails on every attempt goes to the [WithRefused] callback
// under its own mark, with an error wrapping [ErrRetriesExhausted]. Errors
// franz-go reports in polls (it retries them itself) reach the
// [WithFetchErrors] callback.
//
// Environment lanes: with [WithEnv] a consumer is a lane consumer; it joins
// "<group>-<env>" and takes only records tagged with its env. A new lane
// group starts at the end of its topics (pinned by a commit before it
// joins, see [Consumer.Started]), never at the beginning: the trunk
// handled what came before. The trunk consumer (no env) skips records
// whose env has a live lane consumer according to [WithLanes] (an
// [envtag.Lanes]) and takes them otherwise, untagged ones included.
//
// Start window: the trunk handles a new lane's records until it sees the
// lane listed, and those records lie after the lane's pinned start. The
// pinned start carries commit metadata that opens the lane's start
// window on each partition: the lane checks its records against the
// trunk group's commits and passes over (counted, [bus.Stats]
// StartSkipped) every one the trunk handled, until the first one the
// trunk skipped. A record the trunk has not committed yet holds the lane
// for up to 10 s (then the lane takes it). A lane that leaves opens its
// window again, for when it comes back. Without [WithLanes] there is no
// window (the trunk then takes every record anyway).
//
// Hand-over: a lane instance whose env leaves the [WithLanes] set stops
// taking records at once and leaves its group, handing back what it has
// not committed; it joins again when the env is back. Its group's
// committed offsets are the hand-over point. The trunk notes the spans of
// offsets in which it skipped each env's records, and writes them into
// the metadata of its commits (package shadow/bus, [bus.Skips]), so the
// trunk instance that holds a partition next (a rebalance, a restart)
// reads them back. Once the env left, the trunk joins the lane's group,
// handles the env's records inside those spans from the lane's committed
// offsets, commits them in the lane's group and leaves. When it takes the
// env's records again itself it passes over those below the lane's
// committed offset (the lane's floor), such as a lane's records in a
// batch redelivered after a crash (counted, FloorSkipped); when it had
// skipped the env it first waits (up to 15 s) for the lane to leave its
// group, so the lane's last commit is in. Every record of the env is
// handled once, by the lane or by the trunk.
//
// Delivery guarantees: a record is committed only after its handler (or
// the refusal callback) returned nil, so nothing is lost. A commit (or a
// read of the committed offsets) that fails for a transient reason (a
// retriable Kafka error, a lost or refused connection, a timeout) is
// tried up to 6 times over about 3s, so a coordinator that restarts or
// drops its connections does not stop the consumer; a commit that still
// fails, or is rejected for good, stops
// [Consumer.Run], and the next consumer of the group handles
// that poll's records again: the documented at-least-once duplicate,
// counted where it arises ([Shadow.Stats], Uncommitted; OpenTelemetry
// "shadowlane.bus.deliveries"). A refusal is committed at once, retrying
// even a rejected commit up to 3 times, so it reaches [WithRefused] once; only
// a refusal whose commit failed every time reaches it again from the next
// consumer (counted, RefusedUncommitted).
//
// Limits:
//   - the spans travel in commit metadata, at most [bus.MaxMetadata]
//     bytes per partition (Kafka's offset.metadata.max.bytes defaults to
//     4,096); spans that do not fit stay in the trunk's memory only
//     (counted, Unpersisted), and a trunk restart then forgets them;
//   - a lane that leaves commits its offsets again with the start-window
//     metadata, so that when it comes back it passes over the env's
//     records the trunk took while it was away; if that commit fails, the
//     returning lane handles those records again;
//   - a lane whose env leaves while its handler runs finishes that
//     record; a lane that crashed without leaving its group holds the
//     trunk's floor read for up to 15 s, after which the trunk reads the
//     floor as it is.
//
// Every decision is counted with [shadow.Record] under store "kafka".
//
// # Broker migration
//
// For a move between two buses by dual write (package
// shadow/bus/migrate, config "migration:"), [Producer.Sender] is this bus's
// migrate.Sender: it sends through this adapter's produce rule, so a
// marked message lands on the shadow twin here too; the map names
// topics. [MessageID] reads the message id that ties a message's copies
// together, and [Migrating] wraps a [Handler] so that a migrate.Reader decides which copy is
// handled (pass it to the consumer, so the shadow consumer reads through
// it too).
package slkafka
