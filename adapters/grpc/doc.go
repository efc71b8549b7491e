// Package slgrpc is shadowlane's gRPC integration: server interceptors
// admit calls (mark, edge trust, kill switch → codes.Unavailable), client
// interceptors carry the mark in metadata (own keys and W3C baggage
// members), [ServerOptions] and [DialOptions] bundle them.
//
//	srv := grpc.NewServer(slgrpc.ServerOptions(middleware.Internal())...)
//	conn, _ := grpc.NewClient(addr, append(slgrpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
//
// The server interceptors read incoming metadata in place, without copying
// it: a call that carries none of the mark's keys (the run and env headers,
// "baggage"; key case ignored as metadata.ValueFromIncomingContext ignores
// it) is production and is admitted without allocating. [ServerOptions] and
// the interceptors installed on their own behave the same; no stats handler
// is involved.
//
// Environment routing (a balancer that picks project-environment instances
// by the mark's env tag) lives in the envbalancer subpackage.
package slgrpc
