// Package shop is the demo shop the drill runs: a gin gateway (edge) calls a
// gRPC order service (internal), which calls the inventory service over
// HTTP through a relay instrumented only with OpenTelemetry (otelhttp with
// TraceContext + Baggage, no shadowlane), and the inventory service calls an
// outside payment provider. Every piece is wired only through shadowlane's
// public API, the way a user would wire it.
//
// Each hop records the mark it saw per request id (header X-Drill-Id), so
// the drill can check the invariants at every hop.
package shop
