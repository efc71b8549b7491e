// Package foundation benchmarks the foundation's hot path side by side with
// what a user would run instead: a bare gin handler, shadowlane's gin
// middleware (unmarked, marked via header, marked via baggage), otelgin with
// the Baggage propagator; the gRPC unary server interceptor against a bare
// handler and otelgrpc-free baseline; and propagation.FromContext.
//
//	cd bench && go test -run x -bench . -count 5 ./foundation
package foundation
