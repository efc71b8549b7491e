// Package envtag benchmarks the per-call pick cost of shadowlane's
// environment-routing gRPC balancer (adapters/slgrpc/envbalancer) against
// gRPC's own round_robin, with 3 and 300 endpoints. Both balancers are
// built through grpc's balancer registry on a fake ClientConn whose
// subchannels turn READY at once, so only the picker is measured.
//
//	cd bench && go test -run '^$' -bench . -count 6 ./envtag/
package envtag
