// Package shop is the demo shop the drill runs: a gin gateway (edge) calls a
// gRPC order service (internal), which calls the inventory service over
// HTTP through a relay instrumented only with OpenTelemetry (otelhttp with
// TraceContext + Baggage, no shadowlane), and the inventory service calls an
// outside payment provider. Every piece is wired only through shadowlane's
// public API, the way a user would wire it.
//
// Inventory may also record each reservation in the ledger service
// ([WithLedger], [NewLedger]), reached through an environment-routing
// client, and any service may run as several instances in different
// environments (trunk and project environments).
//
// Each hop records the mark it saw per request id (header X-Drill-Id), and
// each instance the environment it belongs to ([Recorder.ServedBy]), so the
// drill can check the invariants at every hop.
//
// With a [Store], the order service records every accepted order in SQL
// (orders, stock), in a Redis cache and as an order event; the
// [Store.LedgerHandler] consumer writes a ledger row per event. With
// [Store.Shipments] it also publishes a shipment request on NATS JetStream, read
// by [Store.ShippingHandler], and with [Store.AMQP] a fulfilment request on
// RabbitMQ, read by [Store.FulfilmentHandler]; both consumers record the
// order in Redis under the mark rebuilt from the message. The shop
// names only production targets: the shadowlane adapters the Store's
// clients are wired with send load-test work to the shadow twins.
package shop
