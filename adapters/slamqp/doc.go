// Package slamqp applies shadowlane's rules to RabbitMQ clients built on
// amqp091-go (github.com/rabbitmq/amqp091-go).
//
// Publish: [Channel.PublishWithContext] sends a message published under a
// load-test mark (see [propagation.With]) to the shadow twin of its exchange
// (by default the name plus "_shadow"), or, through the default exchange, to
// the shadow twin of the queue its routing key names, with the mark in the
// X-Shadowlane-Run and X-Shadowlane-Env headers ([bus.HeaderRun],
// [bus.HeaderEnv]). Twins exist only for the configured exchanges and queues
// ([WithShadowExchanges], [WithShadowQueues], [WithAll]); a marked publish
// anywhere else is refused with a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget]. An unmarked publish to a shadow exchange or
// queue is refused with [shadow.ErrShadowFromProduction].
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
// delivery holds it, and what the broker sends it meanwhile (at most the
// prefetch), unacknowledged; when the switch is on it handles them in
// order and goes on: the messages wait (in the queue, or held), none is
// lost or handled as production, and production deliveries are not held
// (the production queue has its own consumer and prefetch). A hold spends
// no delivery: a nack with requeue would, on every flip of the switch,
// count toward a quorum queue's x-delivery-limit (past it the broker
// drops or dead-letters the message) and [WithMaxDeliveries], and flag
// the message redelivered. Held deliveries go back (nack with requeue)
// when the consumer stops, and after [WithMaxHold] (default 15 minutes)
// of the switch staying off, before RabbitMQ's consumer_timeout (default
// 30 minutes) would close the channel; the consumer then cancels itself
// on that queue and consumes again when the switch is on.
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
// "<queue>-<env>" (declared by [Shadow.Declare] with the production queue's
// arguments and no binding) and handles only its env's messages. The trunk
// ([WithLanes]) decides every message once, when it reads it: a message of
// an environment with a live lane is passed on to that lane's queue (a
// mandatory publish through the default exchange, confirmed before the
// original is acknowledged; the lane's handler gets the original exchange,
// routing key and user id back) and the rest it handles itself, untagged
// ones included. So a late lane gets only what the trunk passed on after it
// saw the lane listed, and a message published before the lane existed is
// never lost. When an environment leaves the lanes, its lane consumer hands
// back what it holds (nack with requeue), stops and waits to be listed
// again; the trunk consumes the lane queue (the hand-over) until then, so
// the lane's backlog is handled once, by the trunk. The lane queues a
// trunk passed messages on to are known to its [Shadow], so a trunk
// consumer restarted in the same process hands them over; a new trunk
// process finds a lane queue with an empty probe message the first time
// it handles a message of that environment (until then, a dropped lane's
// backlog waits in its queue). A lane queue that is missing (the publish
// is returned) leaves the message with the trunk.
// [Shadow.LaneTopology] is idempotent (never "<queue>-<env>-<env>"), and
// [Shadow.Declare] unbinds lane queues an older version had bound.
//
// What stays at least once, counted in [Shadow.Stats] (also the OTel
// counter shadowlane.bus.deliveries) as redeliveries not asked for:
// a consumer that dies after its handler returned and before the broker
// got the ack (the message comes again); a trunk that dies after the
// broker confirmed a message passed on to a lane and before its ack of
// the original (the lane has a copy and the original comes again, to the
// trunk's lane or, if the lane was dropped meanwhile, to the trunk). A
// lane queue deleted while the trunk hands it over closes the channel
// (Consume returns the error).
//
// Per-run evidence ([shadowlane.BusEvidence]; GET /shadowlane/status?run=R
// of the Shadow's runtime): a consumer counts each marked message it hands
// to its handler for the first time (not the broker's redeliveries after a
// failure) as an entry "amqp:<production queue>" whose route is the queue
// it read ("<queue>" or its shadow or lane twin), and a message whose
// deliveries are exhausted as an error "amqp handler"; a marked publish
// that fails (not confirmed, channel closed) counts "amqp publish". The
// [*shadow.Error] refusals are decisions, not errors. Production messages
// cost nothing here.
//
// # Broker migration
//
// For a move between two buses by dual write (package
// shadow/bus/migrate, config "migration:"), [Channel.Sender] is this bus's
// migrate.Sender: it sends through this adapter's produce rule, so a
// marked message lands on the shadow twin here too; the map names
// exchanges (the message key is the routing key). [MessageID] reads the message id that ties a message's copies
// together, and [Migrating] wraps a [Handler] so that a migrate.Reader decides which copy is
// handled (pass it to the consumer, so the shadow consumer reads through
// it too).
package slamqp
