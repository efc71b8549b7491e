// Package nats applies shadowlane's rules to NATS clients built on nats.go
// (github.com/nats-io/nats.go), core NATS and JetStream.
//
// Publish: [Conn.Publish] and [Conn.PublishMsg] send a message published
// under a load-test mark (see [propagation.With]) to the shadow twin of its
// subject (by default "shadow." + subject, [shadow.DefaultSubject]) with the
// mark in the X-Shadowlane-Run and X-Shadowlane-Env headers. NATS headers are
// case-sensitive: they are written exactly so, and read exactly so or in
// lower case. Shadow twins exist only for subjects inside the configured
// patterns ([WithShadowSubjects], [WithAllSubjects]); a marked message for
// any other subject is refused with a [*shadow.Error] wrapping
// [shadow.ErrNoShadowTarget]. An unmarked message for a shadow subject is
// refused with [shadow.ErrShadowFromProduction]. An unmarked publish to a
// production subject is a plain nc.Publish. [Shadow.Prepare] applies the
// same rules to a message sent through any other API (JetStream publish).
//
// Subscribe: [Conn.Subscribe] and [Conn.QueueSubscribe] subscribe the
// handler to the production subject and, when it has a shadow twin, to the
// shadow subject too (the shadow queue group is the queue's shadow name).
// The handler's context carries each message's mark, rebuilt from headers
// and validated; a message on a shadow subject without a run header is still
// load-test traffic. Messages with malformed mark headers are never handled:
// they are counted as blocks and passed to [WithRefused]. A production
// wildcard subscription that catches a shadow subject drops the message.
//
// JetStream: [Shadow.ShadowStream] and [Shadow.CreateShadowStream] derive
// the shadow twin of a stream (name + "_shadow", stream names cannot contain
// '.'; shadow subjects). [Shadow.ConsumeJetStream] runs a pull consumer on
// the production stream and, when its subjects have shadow twins, the shadow
// consumer (consumer name + "_shadow") on the shadow stream with the same
// handler: nil acknowledges, an error naks for redelivery, malformed marks
// terminate the message.
//
// Environment lanes: with [WithEnv] a subscription is a lane subscription
// (queue "<queue>-<env>", consumer "<durable>-<env>") that handles only its
// env's messages; the trunk skips envs that have a live lane according to
// [WithLanes] and takes everything else, untagged messages included.
package nats
