// Package bus holds the client-neutral rules of shadowlane for message
// systems (Kafka, RabbitMQ, NATS, ...), as package rediskeys does for Redis
// and package sqlshadow for SQL. Adapters (adapters/slkafka, adapters/slsarama,
// adapters/slamqp, adapters/slnats, adapters/slrocketmq) keep only client
// glue: they convert their client's header (or property) type and call
// these rules.
//
// What is written here once, for every bus:
//
//   - Header names and the mark codec ([HeaderRun], [HeaderEnv], [FieldOf],
//     [Decoder]): names are matched ignoring ASCII case; the same header
//     given twice (in any spelling) with different values, an empty value or
//     a value that is not a valid id is malformed, and a malformed message is
//     never handled.
//   - Shadow-name sets ([Names]) with one "all" switch, and the naming of
//     shadow targets ([shadow.Naming]).
//   - Environment lanes: [Rules.LaneName] ("<name>-<env>" for a lane
//     instance) and [Rules.Takes] (a lane takes only its env; the trunk
//     takes everything except the envs that have a live lane).
//   - The produce rule ([Rules.Produce], built on [shadow.Route]): marked
//     work goes to the shadow twin or is refused with a typed error.
//   - The consume rule ([Rules.Consume]): one [Decision] per received
//     message — handle it under its mark, skip it (another lane's), refuse
//     it (malformed mark, or a run mark on a production target: an anomaly,
//     never handled as load test nor as production), or let it wait (the
//     kill switch is off, or this lane left the lane set: it is neither
//     handled nor acknowledged, and is handled later).
//   - Counting each decision once: refusals are counted by the trunk
//     consumer only (each lane sees its own copy of a malformed message;
//     the trunk refuses it once); a produce rule re-applied to a message the
//     wrapper already prepared is not counted again ([Rules.Recheck]).
//
// Also written here: the mark steps of the consume rule on their own
// ([Rules.Mark], for adapters' Mark methods); lane ownership on buses whose
// consumers share one message sequence (JetStream): [Epochs] say which of
// an env's messages its lane owns, [Boundary] is where an epoch opens and
// closes, and [LaneNameFor] names an env's lane consumer or queue; and
// [Counters], what every bus adapter's consumers do beyond handling
// (committed or not, passed over, passed on to lanes, handed over, handled
// on a redelivery not asked for: where at-least-once duplicates arise);
// [Rules.WaitReady], the wait of a consumer that got a Wait decision;
// [Runs], a consumer's per-group goroutines (the first failure stops all).
// Package bustest holds the reconciliation tests' ledger.
//
// Every decision is counted in the series [Config.Decisions] returns (the
// adapter's Runtime's), under the store the adapter names ([Config.Store]).
//
// For partitioned logs with consumer groups (Kafka, through franz-go or
// sarama) the lane coordination is written here once as well: the
// trunk's ledger of skipped spans, carried in its commit metadata
// ([Skips], [Backlog]: the hand-over of a removed lane's backlog, which
// survives a trunk restart), the lane floor, a new or returning lane's
// start window ([StartMetadata], [TrunkDecision], [StartWindow]), the
// lane steps of each record run inside its consume decision, before the
// kill-switch step, so that the switch is read once, after any step that
// waited on the broker ([Rules.ConsumeRecord], [LaneSteps], [Broker]), the
// consumer-group plans ([Groups], [Rules.Plans]), the bounded in-place
// retry ([Retry]) and the counters of what can only be at least once
// ([Counters]: a failed commit's records, counted where they arise).
package bus
