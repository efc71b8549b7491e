// Package slrocketmq applies shadowlane's rules to RocketMQ clients built on
// rocketmq-client-go (github.com/apache/rocketmq-client-go/v2, the
// remoting-protocol client of RocketMQ 4.x and 5.x brokers), through the
// client's own producer and consumer interceptors.
//
// Produce: [Shadow.ProducerInterceptor] (installed by [Shadow.NewProducer],
// or with producer.WithInterceptor) runs for every message the producer
// sends, whichever send method sent it. A message sent under a load-test
// mark (see [propagation.With]) goes to the shadow twin of its topic (by
// default the topic name plus "_shadow", [shadow.DefaultTopic]) and carries
// the mark in the X-Shadowlane-Run and X-Shadowlane-Env user properties
// ([bus.HeaderRun], [bus.HeaderEnv]). Shadow twins are configured per topic
// ([WithShadowTopics], or [WithAll]); a marked message for any other topic
// is refused with a [*shadow.Error] wrapping [shadow.ErrNoShadowTarget] and
// never sent. An unmarked message for a shadow topic is refused with
// [shadow.ErrShadowFromProduction]. Unmarked messages keep their topic and
// lose any stale mark property. A batch is rewritten message by message. A
// message one of whose properties contains the client's property separators
// (\x01, \x02) so that it would put a mark property on the wire is refused
// ([shadow.ErrUnsupported]). A client namespace ("ns%topic") is kept: the
// rules see the topic without it.
//
// Transactions: a transaction producer sends through the same interceptor,
// but the client calls its listener (ExecuteLocalTransaction,
// CheckLocalTransaction) without a context: the listener must run its local
// transaction under [Shadow.Context] of the message, so that a load-test
// message's local writes are shadowed too. Untested against the fixture,
// which does not serve END_TRANSACTION.
//
// Queue selection: the client names the queue's topic, not the message's,
// on the wire. A message's Queue (the manual queue selector) moves to the
// shadow topic with the message; a Queue naming another topic than the
// message is refused. A custom producer.QueueSelector must pick one of the
// queues it is given (those of the shadow topic for a marked message): a
// selector that returns a queue of its own making can send a marked message
// to any topic, and the interceptor cannot see that.
//
// Consume: [Shadow.ConsumerInterceptor] applies the consume rule of package
// [github.com/shadowlane/shadowlane/shadow/bus] to every message a push
// consumer delivers, before the callback sees it: the callback's context
// carries the messages' mark (a message on a shadow topic without a run
// property is still load-test traffic); a message whose mark properties
// are malformed or conflicting, or that carries a run mark on a
// production topic (an anomaly: marked messages only go to shadow
// topics), is never handled: it is counted as a block, passed to the
// [WithRefused] callback once (by the trunk; lane consumers skip their
// copy) and acknowledged. [Shadow.NewPushConsumer] builds the production
// consumer of a group and, for groups named in [WithShadowGroups], the
// shadow consumer (group "<group>_shadow", [WithGroupNaming]) on the
// shadow twins of the topics it subscribes, with one handler.
//
// Kill switch: while the runtime ([WithRuntime], default
// [shadowlane.Default]) says load-test traffic is off, a consumer that
// meets a marked message holds it (the consume goroutine waits; nothing
// is handled or acknowledged) until the switch is on again, for at most
// [WithHold]; then it hands the message back to the broker, which
// redelivers it later through the group's retry topic. Nothing is lost,
// nothing is handled while off, and nothing is handled as production.
// A switch that stays off through all of the client's reconsume attempts
// (16 by default, about 4 h 46 min of broker delays) sends the message to
// the shadow group's dead-letter topic, never to production.
//
// Environment lanes: with [WithEnv] a consumer is a lane consumer: its
// group is "<group>-<env>" and it takes only messages tagged with its env.
// The trunk (no env) skips messages whose env has a live lane according to
// [WithLanes] and takes them otherwise, untagged ones included. In RocketMQ
// every group reads every message, so the trunk and a lane group each see
// all of them and each decides for itself. Hand-over: once a trunk
// consumer has skipped an env's message, it never takes that env's
// messages in the production group again; while the env is not live it
// runs the lane's groups itself (the lane's backlog and later messages are
// handled there, once), and lets them go when the lane is back
// ([PushConsumer.Adopted], [WithHandoverEnvs]; handover.go says why this
// differs from Kafka's hand-over and what it needs: a lane instance stops
// when its env leaves).
//
// Broadcasting consumers: the client drops a broadcast message whose
// consume call did not succeed, so a marked message still waiting when the
// hold runs out is lost to that consumer (never handled as production).
//
// Pull consumers: the client runs interceptors of a pull consumer after
// the messages were handed out, so they cannot keep a message from the
// application; use [Shadow.Decide] (or [Shadow.Mark]) on each pulled
// message.
//
// Client races: rocketmq-client-go v2 starts a rebalance in the
// background in every consumer Start, and its Shutdown writes state that
// goroutine (and the client's periodic tasks) read without
// synchronization; the race detector reports it when a consumer is shut
// down right after it started. [Shadow.NewPushConsumer] gives the shadow
// consumer a client instance of its own, so that starting the two
// consumers one after the other does not race in the same way. Its
// orderly consumer also races, with no adapter code involved:
// processQueue.takeMessages (consumer/process_queue.go:313 of the pinned
// version) polls pq.msgCache.Empty() without pq.mutex while
// processQueue.putMessage (process_queue.go:116, from pullMessage) puts
// into the same tree map under it. The read is the tree's size word and
// takeMessages re-reads the tree under the lock, so it is benign, but the
// race detector fails on it: the orderly test is skipped under -race
// (SLROCKETMQ_ORDERLY_RACE=1 runs it anyway).
//
// Every decision is counted with [shadow.Record] under store "rocketmq".
// Per-run evidence (GET /shadowlane/status?run=R): a push consumer counts
// each marked message once as an entry "rocketmq:<production topic>" with
// the production group as its route, a callback failing on a marked
// message's last reconsume attempt as an error "rocketmq handler" (the
// maximum is read from the consumer's options), and a marked send that
// fails as "rocketmq publish" (see evidence.go for what "once" means
// across instances).
//
// The package is tested against the real client over TCP, with a loopback
// fixture that speaks the client's subset of the remoting protocol (there
// is no RocketMQ broker on the test machines); see package rmqfake for
// what it covers and what it does not.
//
// # Broker migration
//
// For a move between two buses by dual write (package
// shadow/bus/migrate, config "migration:"), [Sender] is this bus's
// migrate.Sender: it sends through this adapter's produce rule, so a
// marked message lands on the shadow twin here too; the map names
// topics. [MessageID] reads the message id that ties a message's copies
// together, and [Migrating] wraps a [Handler], message by message of a batch so that a migrate.Reader decides which copy is
// handled (pass it to the consumer, so the shadow consumer reads through
// it too).
package slrocketmq
