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
// # Stores and the message bus
//
// The order service records every accepted order for real: in one SQL
// transaction an orders row and a stock decrement (database/sql wrapped by
// adapters/sql, table mode with the dialect of the database), then a
// Redis cache entry order:<id> and a stock counter (go-redis with the
// adapters/goredis hook, key mode, prefix "shadow:"), then an
// order-events record (franz-go with the adapters/kafka hook and
// Producer). A ledger writer (the kafka adapter's consumer runner, a
// production group on order-events and a shadow group on
// order-events_shadow) writes a ledger row per event through the SQL
// adapter, with the mark rebuilt from the record headers. The shadow
// twins (orders_shadow, stock_shadow, ledger_shadow, order-events_shadow)
// are created at start. Embedded defaults: a temp-file SQLite database
// (modernc.org/sqlite), miniredis and kfake; [Backends] points the drill at
// real MySQL/MariaDB or PostgreSQL, Redis and Kafka instead, with names
// unique to the run (d<hex>_orders, d<hex>:order:<id>, d<hex>_order-events)
// that are dropped afterwards.
//
// After the traffic the drill reads every store back with plain clients
// (no shadowlane) and checks, with expected and observed counts, that
// production tables, keys and topics hold exactly the accepted production
// orders and no load-test data, that their shadow twins hold exactly the
// accepted load-test orders and no production data, that the run carried
// with each row and record matches its side, that stock counters moved by
// exactly one per accepted order per side, that the end offsets of
// order-events and order-events_shadow reconcile with what was produced,
// and that requests refused by a kill switch or a strict route wrote
// nothing anywhere (forged marks are stripped at the edge, so those
// requests are production orders and never reach a shadow target).
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
