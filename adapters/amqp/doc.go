// Package amqp applies shadowlane's rules to RabbitMQ clients built on
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
// traffic). The handler's nil acks, an error nacks with requeue. Deliveries
// with malformed mark headers are never handled: they are counted and nacked
// without requeue, so the queue's dead-letter exchange gets them.
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
// untagged ones included.
package amqp
