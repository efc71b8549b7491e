// Package drill runs the end-to-end isolation drill: it starts the demo shop
// (examples/shop) in one process on loopback, sends production, signed
// load-test, forged and env-tagged traffic through it, and checks every
// isolation invariant from what each hop and the outside payment provider
// actually saw.
//
// It also runs a project environment, proj-a: the order service and the
// ledger have a trunk and a proj-a instance, inventory (between them) only
// a trunk one. The gateway reaches orders through one gRPC connection whose
// envbalancer picks per call; orders reaches inventory and inventory the
// ledger through envtag transports over the registry file named in their
// routing config. Each instance records which environment served each
// request, and the drill checks that proj-a requests are served by
// orders@proj-a, inventory@trunk and ledger@proj-a (load-test or not, mark
// header or the gateway's cookie/query tag source), that untagged requests
// never reach a project instance, that a tag without a lane falls back to
// trunk everywhere, and that a ledger made strict by a config reload fails
// such requests at once. The report's "routing per env" section shows who
// served what and envtag's pick counters.
//
// # Zones
//
// A two-zone slice (zones.go) runs beside the shop: a caller in room-a
// reaching stock over HTTP (envtag transport) and pricing over gRPC
// (envbalancer), each with two instances in room-a and two in room-b,
// every instance counting what it served itself. Production and an
// unpinned load-test run stay in room-a (same zone first); a config reload
// pins one run to room-b (routing.pin), after which only room-b's
// instances serve it; room-b's instances are then stopped for real and
// the pinned run is refused at the caller (fail closed, nothing reaches
// room-a) while production carries on. The report's zones section shows
// each phase with the zone that served it, the instances' own counts and
// the same-zone, spilled, pinned and pin-refused pick counters.
//
// # Stores and the message bus
//
// The order service records every accepted order for real: in one SQL
// transaction an orders row and a stock decrement (database/sql wrapped by
// adapters/slsql, table mode with the dialect of the database), then a
// Redis cache entry order:<id> and a stock counter (go-redis with the
// adapters/slredis hook, key mode, prefix "shadow:"), then an
// order-events record (franz-go with the adapters/slkafka hook and
// Producer). A ledger writer (the kafka adapter's consumer runner, a
// production group on order-events and a shadow group on
// order-events_shadow) writes a ledger row per event through the SQL
// adapter, with the mark rebuilt from the record headers. The shadow
// twins (orders_shadow, stock_shadow, ledger_shadow, order-events_shadow)
// are created at start.
//
// Two more buses carry work to two more consumer services. Every order
// publishes a shipment request on NATS JetStream (subject shop.shipments,
// stream SHIPMENTS; the adapters/slnats JetStream wrapper sends load-test requests
// to shadow.shop.shipments in SHIPMENTS_shadow, which the adapter derived
// from the production stream); the shipping service (the adapter's
// JetStream consumer on both streams) records shipment:<id> in Redis. It
// runs a trunk and a proj-a lane instance: the drill checks that every
// proj-a-tagged request, production or load-test, was handled by the lane
// and every other one by the trunk. With
// a RabbitMQ URL every order also publishes a fulfilment request (exchange
// shop, key fulfil, queue fulfilment; twins shop_shadow and
// fulfilment_shadow declared by the adapter's Declare); the fulfilment
// service (the adapter's consumer) records fulfilment:<id> in Redis. Both
// record the run of the mark the adapter rebuilt from the message
// headers, so a consumed load-test message lands on a shadow key with its
// run. The drill binds two audit queues of its own (plain amqp091) to the
// production and the shadow exchange: the broker keeps a copy of
// everything routed to either side for the read-back.
//
// RocketMQ (rocketmq.go): every order also sends an order notice on topic
// order-notices through rocketmq-client-go with the adapters/slrocketmq
// interceptor (load-test notices on order-notices_shadow with the run
// property); a notifier service (trunk and proj-a lane push consumers of
// the adapter, with shadow groups) handles them. Its only backend is the
// loopback fixture adapters/slrocketmq/rmqfake (there is no RocketMQ broker
// to point at); the invariants read the fixture's broker-side view and
// the topics appear in the isolation table as store "rocketmq".
//
// Embedded defaults: a temp-file SQLite database (modernc.org/sqlite),
// miniredis, kfake and an in-process nats-server with JetStream; RabbitMQ
// has no embedded stand-in, so without [Backends.AMQP] the fulfilment bus
// is left out and the report says so. [Backends] points the drill at real
// MySQL/MariaDB or PostgreSQL, Redis, Kafka, NATS and RabbitMQ instead,
// with names unique to the run (d<hex>_orders, d<hex>:order:<id>,
// d<hex>_order-events, D<HEX>_SHIPMENTS, d<hex>_shop) that are deleted
// afterwards.
//
// After the traffic the drill reads every store back with plain clients
// (no shadowlane) and checks, with expected and observed counts, that
// production tables, keys, topics, streams and exchanges hold exactly the
// accepted production orders and no load-test data, that their shadow twins hold exactly the
// accepted load-test orders and no production data, that the run carried
// with each row and record matches its side, that stock counters moved by
// exactly one per accepted order per side, that the end offsets of
// order-events and order-events_shadow and the message counts of both
// streams reconcile with what was produced, that the fulfilment queues
// were drained,
// and that requests refused by a kill switch or a strict route wrote
// nothing anywhere (forged, expired or otherwise unverifiable load-test
// marks are refused at the edge with 403, so they are neither production
// orders nor shadow ones; a valid token alone is load-test traffic).
//
// # What the client knows: answered, refused, unknown
//
// Every request carries a client-generated id (header X-Drill-Id, the
// order id) that ends up in every record it causes. The drill counts each
// request by what its client knows: answered (accepted: every effect must
// be present, once, on its own side), refused by policy (kill switch,
// strict route, forged mark, limiter: nothing anywhere) or unknown (no
// answer before the deadline, a 504 at the deadline, a 502 after a call
// that broke under way, or a 500 after a hop's call failed: its effects
// may be present or absent, but only on its own side and at most once per
// store). Each failed answer names the hop that produced it (header
// X-Shop-Hop) and says why in its body; the drill keeps both. A 500 is a
// call that failed for real (a store answered an error): without faults
// that is a violation; a timeout or a broken call is not, it is the
// machine being slow. Invariants are stated over the three
// separately and the report shows all three per class; counts that
// unknown requests may or may not have moved are checked as ranges. No
// invariant is a wall time: the gateway gives every request a deadline
// (Options.Timeout) that travels with it to every store call, the client
// waits a grace period longer, and the order service's calls must end
// within the deadline plus a margin of twice the observed median latency.
//
// # Consumers that survive
//
// The shop's consumers are idempotent (the ledger writer applies an event
// in one transaction: the ledger row, keyed by order id, and a row in the
// consumption table; an event applied before rolls back; the shipping and
// fulfilment services write the same value for the same request), retry
// transient store errors with bounded backoff, send poison records to the
// refusal path and resume after a restart. The drill checks from the
// consumption tables that every accepted order's event was consumed
// exactly once, on its own side, by the right lane.
//
// # Broker migration
//
// After the fixed scenarios, order events move from NATS JetStream to
// Kafka by dual write (package shadow/bus/migrate, migration.go): a
// Runtime of its own reads a config file whose "migration:" phase the
// drill rewrites and reloads (1 dual write, 2 dual read, 3 new only) while
// a JetStream consumer (old side) and a Kafka consumer group (new side),
// both through one migrate.Reader, run; production, load-test and
// proj-a-tagged events are sent in every phase. Before phase 3 the drill
// waits until the old side's consumer has read everything written to it
// (the operator's rule for phase 3). Read back with plain clients, each
// target holds exactly the events its phases wrote (marked ones only on
// the shadow stream and topic, with their run; env-tagged ones with their
// tag; every copy with its message id), and every event was handled
// exactly once, marked ones under their mark from a shadow target. The
// report's "broker migration" section shows the phases, what each side
// handled and the reader's skips and dropped duplicates. The tests run the
// same scenario between every pair of buses (migBus).
//
// # Faults
//
// With [Options.Faults] (shadowlane drill --faults) a loopback TCP fault
// proxy sits in front of every store and broker the shop reaches over TCP
// (faults.go), and during the timed phase each is killed, blackholed and
// slowed in turn on a printed schedule; the read-back after the run goes
// around the proxies. Kafka is proxied when the drill runs against real
// brokers (--kafka): one proxy per broker, reading the Kafka protocol to
// rewrite the broker addresses in Metadata and FindCoordinator responses
// (kafkaproxy.go); the embedded kfake runs in process and is not. The same invariants must hold, the consumers must
// catch up once the faults heal, and the report draws the fault timeline
// under the traffic chart.
//
// # Report
//
// [Report.Summary] prints the result, [Report.WriteHTML] writes a
// self-contained HTML page (inline CSS, JavaScript and SVG): summary,
// invariants, traffic by class over time, latency percentiles by class,
// blocks by reason, isolation per store and routing per environment.
//
// # Timed runs
//
// With [Options.Duration] and [Options.Rate] the drill also sends mixed
// traffic ([Mix]: production, signed load-test, forged, env-tagged) open
// loop for that long; every timed request is accounted for in the store
// checks like the fixed scenarios'.
package drill
