// Package slgrpc is shadowlane's gRPC integration: server interceptors
// admit calls (mark, edge trust, kill switch → codes.Unavailable), client
// interceptors carry the mark in metadata (own keys and W3C baggage
// members), [ServerOptions] and [DialOptions] bundle them.
//
//	srv := grpc.NewServer(slgrpc.ServerOptions(slgrpc.Internal())...)
//	conn, _ := grpc.NewClient(addr, append(slgrpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
//
// The server interceptors read incoming metadata in place, without copying
// it: a call that carries none of the mark's keys (the run, env and token
// headers, "baggage" holding the mark's members, also behind grpc-gateway's
// "grpc-metadata-" prefix; key case ignored as
// metadata.ValueFromIncomingContext ignores it) is production and is
// admitted without allocating. At an edge a call with a load-test indicator
// that fails verification gets codes.PermissionDenied (a valid token alone
// is enough). A call that carried mark keys reaches its handler with
// incoming metadata stripped of all of them, so a proxy forwarding incoming
// metadata cannot pass an unverified mark on. [ServerOptions] and the
// interceptors installed on their own behave the same; no stats handler is
// involved.
//
// The client interceptors strip stale mark keys from the outgoing metadata
// of unmarked calls, and apply outbound.allow to load-test calls by the
// dial target's authority ([shadowlane.GRPCAuthority]): a call elsewhere
// fails with codes.PermissionDenied, or is answered by the configured gRPC
// mock for its full method (outbound.mocks[].grpcMethod: the message in
// protobuf JSON; a stream gets it once, then io.EOF), unary and streaming
// alike. Calls made without these interceptors are not covered.
//
// Environment routing (a balancer that picks project-environment instances
// by the mark's env tag) lives in the envbalancer subpackage.
package slgrpc
