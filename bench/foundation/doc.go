// Package foundation benchmarks the foundation's hot path side by side with
// what a user would run instead: a bare gin handler, shadowlane's gin
// middleware (unmarked, marked via header, marked via baggage), otelgin with
// the Baggage propagator; the gRPC unary server interceptor (as
// slgrpc.ServerOptions installs it: unmarked, unmarked under a server-like
// context, unmarked with application baggage, marked via metadata, marked
// via baggage) against a bare handler; and propagation.FromContext.
//
//	cd bench && go test -run x -bench . -count 5 ./foundation
package foundation
