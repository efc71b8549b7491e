// Package slnats applies shadowlane's rules to NATS clients built on nats.go
// (github.com/nats-io/nats.go), core NATS and JetStream.
//
// Publish: [Conn.Publish] and [Conn.PublishMsg] (core NATS) and
// [JetStream.Publish] and [JetStream.PublishMsg] (JetStream, wrap the
// context with [Shadow.JetStream]) send a message published under a
// load-test mark (see [propagation.With]) to the shadow twin of its subject
// (by default "shadow." + subject, [shadow.DefaultSubject]) with the mark in
// the X-Shadowlane-Run and X-Shadowlane-Env headers ([bus.HeaderRun],
// [bus.HeaderEnv]). The wrapped publish is the whole step: there is no
// separate "prepare" call to forget. Shadow twins exist only for subjects
// inside the configured patterns ([WithShadowSubjects], [WithAll]); a marked
// message for any other subject is refused with a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget]. An unmarked message for a shadow subject is
// refused with [shadow.ErrShadowFromProduction]. An unmarked publish to a
// production subject is a plain nc.Publish.
//
// What the wrapper cannot see: nats.go has no publish hook (unlike
// go-redis or franz-go), so a message published on the raw *slnats.Conn or
// jetstream.JetStream (nc.Publish, js.PublishMsg, also through
// [Conn.NATS] or [JetStream.JS]) bypasses every rule: under a marked
// context it lands on the production subject, unmarked, and consumers
// handle it as production. Publish only through the wrappers; `shadowlane
// vet` (the lostctx analyzer's unwired rule) reports raw publishes and
// requests in application code.
//
// The rules are those of package shadow/bus, the same for every bus: header
// names are read in any letter case (NATS headers are case-sensitive maps;
// two spellings with different values are a conflict), a malformed mark or a
// run mark on a production subject (an anomaly: marked messages only go to
// shadow subjects) is refused — counted once, by the trunk (lanes skip their
// copy), passed to [WithRefused], never handled.
//
// Subscribe: [Conn.Subscribe] and [Conn.QueueSubscribe] subscribe the
// handler to the production subject and, when it has a shadow twin, to the
// shadow subject too (the shadow queue group is the queue's shadow name,
// [WithGroupNaming]). The handler's context carries each message's mark; a
// message on a shadow subject without a run header is still load-test
// traffic. A production wildcard subscription that catches a shadow subject
// drops the message. Core NATS cannot hold a message back: one that arrives
// while the kill switch is off is refused (counted, [WithRefused]).
//
// JetStream: [Shadow.ShadowStream] and [Shadow.CreateShadowStream] derive
// the shadow twin of a stream (name + "_shadow", [WithStreamNaming]; shadow
// subjects). [Shadow.ConsumeJetStream] runs a pull consumer on the
// production stream and, when its subjects have shadow twins, the shadow
// consumer on the shadow stream with the same handler: nil acknowledges,
// an error naks for a delayed redelivery, bounded by MaxDeliver
// ([DefaultMaxDeliver] when unset); the last failure, and a message the
// server drops after MaxDeliver (its advisory), reach [WithRefused], once
// per consumer instance: a later copy of a message the instance already
// handled, refused or saw dropped (a redelivery it had buffered behind a
// slow handler) is terminated, not handled again. The consumer pulls
// with requests the server ends (batch complete or expired), one at a
// time. While the kill switch ([WithRuntime]) is off, a consumer that
// gets a marked message stops pulling and holds it, with the rest of its
// pull request, in progress (no redelivery, no delivery spent) until the
// switch is on again; then it takes them in order at once and pulls again.
// Nothing is left in flight to wait for its ack wait.
//
// Stopping a consumption ([Consumption.Stop]) lets a handler that is
// running finish (its outcome acknowledges or naks as usual) and hands
// back at once everything its fetch received but did not hand to the
// handler, held messages included: each is naked once, with a short
// delay (one second, so that the server, which has not yet seen the
// ended fetch go, cannot send it straight back there), and another
// instance takes it without waiting for its ack wait. A lane that leaves
// the lanes does the same for the trunk (while the kill switch is off it
// keeps held messages in progress, which the trunk could not take
// either, and hands them back once the switch is on). A hand-back costs
// what waiting for the ack wait cost, one delivery per message, only
// sooner: the server counted the delivery when it sent the message, so
// a message handed back on its MaxDeliver-th delivery is dropped (its
// advisory reaches [WithRefused]) as it would have been at its ack wait.
// Only what the server had sent but the client had not yet received when
// the fetch ended (a moment's worth) still waits for its ack wait.
//
// Environment lanes: with [WithEnv] a subscription is a lane subscription
// (queue "<queue>-<env>", consumer "<durable>-<env>", created to deliver
// new messages only) that handles only its env's messages; the trunk skips
// envs that have a live lane according to [WithLanes] and takes everything
// else, untagged messages included. Core NATS subscriptions decide per
// message at arrival (a message in flight while the lanes change may be
// handled by both or neither side: core NATS promises at most once).
//
// JetStream lanes are exactly once across lane changes. The trunk's
// consumer and a lane's consumer read the same stream, so each message has
// one stream sequence; which of them owns an env's message is decided by
// that env's epochs (package shadow/bus, [bus.Epochs]), kept in a
// key-value bucket ([WithLaneBucket], default [DefaultLaneBucket], created
// when missing; every instance of a consumer must use the same one). An
// epoch opens when the env is listed (and its lane consumer exists) and
// closes when it leaves, each at a boundary past every sequence delivered
// so far to either consumer, so a message's owner is fixed once it is
// delivered, whatever the order in which consumers see the change, a
// crash's redeliveries arrive or a late lane starts: the trunk handles
// what it read before the lane's epoch opened, the lane the rest, and a
// redelivery goes to its owner. When the env leaves, the lane consumer
// stops pulling, naks what it holds and waits to be listed again; the
// trunk closes the epoch and hands the backlog over (it pulls from the
// lane's consumer, handles what the epoch gives the lane and acknowledges
// the rest; a message the kill switch holds back is kept in progress, as
// a consumer's own are, spending no delivery) until nothing below the
// epoch's end is unacknowledged, or the lane is back. A message whose owner cannot be read (the bucket is
// unreachable) is not handled: it is redelivered after a pause
// ([WithLaneErrors] is told); each pause costs a delivery, so a store that
// stays away sends it the refusal path after MaxDeliver.
//
// What stays at least once, counted in [Shadow.Stats] (also the OTel
// counter shadowlane.bus.deliveries) as redeliveries not asked for: a
// consumer that dies (or whose ack is lost) after its handler returned;
// a handler slower than the consumer's AckWait (the server redelivers to
// another instance meanwhile). A lane consumer that is deleted loses its
// backlog with it; a stream with interest retention keeps messages a
// dropped lane's consumer has not acknowledged until it is deleted.
//
// Per-run evidence ([shadowlane.BusEvidence]; GET /shadowlane/status?run=R
// of the Shadow's runtime): a subscription or JetStream consumer counts
// each marked message it hands to its handler (JetStream: its first
// delivery) as an entry "nats:<first token of the production subject>"
// whose route is the queue group, subject or durable consumer name; a
// JetStream message whose handler failed on its last delivery counts an
// error "nats handler", and a marked publish (core or JetStream) that
// fails "nats publish". Refusals are decisions, not errors. Production
// messages cost nothing here.
//
// # Broker migration
//
// For a move between two buses by dual write (package
// shadow/bus/migrate, config "migration:"), [JetStream.Sender] is this bus's
// migrate.Sender: it sends through this adapter's produce rule, so a
// marked message lands on the shadow twin here too; the map names
// subjects. [MessageID] reads the message id that ties a message's copies
// together, and [Migrating] wraps a [JSHandler] so that a migrate.Reader decides which copy is
// handled (pass it to the consumer, so the shadow consumer reads through
// it too).
package slnats
