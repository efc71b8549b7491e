// Package slamqp applies shadowlane's rules to RabbitMQ clients built on
// amqp091-go (github.com/rabbitmq/amqp091-go).
//
// Publish: [Channel.PublishWithContext] sends a message published under a
// load-test mark (see [propagation.With]) to the shadow twin of its exchange
// (by default the name plus "_shadow"), or, through the default exchange, to
// the shadow twin of the queue its routing key names, with the mark in the
// X-Shadowlane-Run and X-Shadowlane-Env headers. Twins exist only for the
// configured exchanges and queues ([WithShadowExchanges],
// [WithShadowQueues], [WithAll]); a marked publish anywhere else is refused
// with a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget]. An unmarked
// publish to a shadow exchange or queue is refused with
// [shadow.ErrShadowFromProduction].
//
// Consume: [Channel.Consume] reads the production queue and, when it has a
// twin, the shadow queue, with the same handler; the handler's context
// carries each delivery's mark, rebuilt from its headers and validated (a
// delivery from a shadow queue without a run header is still load-test
// traffic). Consume sets a prefetch ([WithPrefetch]). The handler's nil
// acks; an error nacks with requeue after a short pause, at most
// [WithMaxDeliveries] times in all, then the delivery goes to [WithRefused]
// and is nacked without requeue (dead letter), so a poison message cannot
// spin or starve the queue. Deliveries with malformed mark headers, and a
// run mark on a production queue (an anomaly: marked messages only go to
// shadow queues), are never handled: they are counted once (by the trunk;
// lanes skip their copy) and nacked without requeue, so the queue's
// dead-letter exchange gets them. The rules are those of package
// shadow/bus, the same for every bus (header names in any letter case, two
// spellings with different values refused).
//
// Kill switch: while the runtime ([WithRuntime], default the default
// runtime) says load-test traffic is off, a consumer that gets a marked
// delivery nacks it with requeue, cancels its consumer on that (shadow)
// queue, hands back what it holds, and consumes again when the switch is on:
// the messages wait in the queue, none is lost or handled as production.
//
// Publish guarantees: without [WithConfirms] a publish returns when the
// message is written; a publish to an undeclared (shadow) exchange is only
// reported by the broker closing the channel later, and an unroutable
// message is dropped silently. With [WithConfirms] the wrapper waits for
// the broker's confirmation and returns [ErrNotConfirmed] otherwise, and a
// mandatory publish the broker returns (basic.return, which RabbitMQ sends
// before the confirmation) is an error wrapping [ErrUnroutable] — for a
// marked publish also a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget]
// (the twin exists, nothing is bound to it).
//
// Topology: [Shadow.Declare] declares production exchanges, queues and
// bindings and their shadow twins, mirroring them; dead-letter and alternate
// exchange arguments of a twin name twins too (or the declaration is
// refused), so shadow messages never fall back into production.
//
// Environment lanes: with [WithEnv] the instance consumes its lane queue
// "<queue>-<env>" (declared with the same bindings by [Shadow.Declare]) and
// handles only its env's messages; the trunk acks and skips messages of
// environments that have a live lane ([WithLanes]) and takes the rest,
// untagged ones included. A new lane queue only gets messages published
// after it was bound, so a lane never handles what the trunk handled
// before it. [Shadow.LaneTopology] is idempotent (never "<queue>-<env>-<env>").
package slamqp
