// Package slsarama applies shadowlane's rules to Kafka clients built on
// IBM/sarama (github.com/IBM/sarama).
//
// Sarama messages carry no context, so the mark is applied by a
// context-taking wrapper: [Producer.SendMessage] (or [Shadow.Prepare] before
// any other send) moves a message produced under a load-test mark to the
// shadow twin of its topic (topic + "_shadow") with the X-Shadowlane-Run and
// X-Shadowlane-Env headers, and refuses, with a [*shadow.Error], a marked
// message for a topic without a configured twin
// ([shadow.ErrNoShadowTarget]) and an unmarked message for a shadow topic
// ([shadow.ErrShadowFromProduction]).
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
// when the session ends); nothing is lost or handled as production. A lane
// instance whose env leaves the [WithLanes] set waits the same way.
package slsarama
