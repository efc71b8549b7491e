// Package slkafka applies shadowlane's rules to Kafka clients built on
// franz-go (github.com/twmb/franz-go/pkg/kgo).
//
// Produce: a record produced under a load-test mark (see
// [propagation.With]) goes to the shadow twin of its topic (by default the
// topic name plus "_shadow", [shadow.DefaultTopic]) and carries the mark in
// the X-Shadowlane-Run and X-Shadowlane-Env record headers. Shadow twins are
// configured per topic ([WithShadowTopics], or [WithAll]); a marked
// record for any other topic is refused with a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget] and never sent. An unmarked record for a shadow
// topic is refused with [shadow.ErrShadowFromProduction]. Unmarked records
// keep their topic and lose any stale mark headers, at no allocation.
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
// Hand-over: a lane instance whose env leaves the [WithLanes] set stops
// taking records at once and leaves its group, handing back what it has
// not committed; it joins again when the env is back. Its group's
// committed offsets are the hand-over point: the trunk consumer that
// skipped the env's records joins the lane's group, handles the env's
// records from there up to the last one it skipped, commits them in the
// lane's group and leaves. Every record of the env is handled once, by
// the lane or by the trunk. Limits: the trunk remembers what it skipped
// in memory, so a trunk restarted between the lane leaving and the
// hand-over finishing forgets the backlog (it waits in the lane's group
// for the lane, as before); and a lane that comes back resumes at its
// group's offsets, so the env's records the trunk took while the lane was
// away (after the hand-over point) are handled again by the lane.
//
// Every decision is counted with [shadow.Record] under store "kafka".
package slkafka
