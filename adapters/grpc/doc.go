// Package slgrpc is shadowlane's gRPC integration: server interceptors
// admit calls (mark, edge trust, kill switch → codes.Unavailable), client
// interceptors carry the mark in metadata (own keys and W3C baggage
// members), [ServerOptions] and [DialOptions] bundle them.
//
//	srv := grpc.NewServer(slgrpc.ServerOptions(middleware.Internal())...)
//	conn, _ := grpc.NewClient(addr, append(slgrpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
//
// Environment routing (a balancer that picks project-environment instances
// by the mark's env tag) lives in the envbalancer subpackage.
package slgrpc
