// Package envbalancer is a gRPC load-balancing policy that routes each call
// by the environment tag it carries (propagation.FromContext(ctx).Env):
// a call tagged "proj-42" goes to a READY endpoint labelled "proj-42"
// where the target has one, else to the configured fallback environments,
// else to trunk; an untagged call goes to trunk only and never reaches a
// project instance. Within an environment, calls rotate round robin.
//
// The policy is registered as [Name] ("shadowlane_env") when the package is
// imported; select it with [DialOption] or a service config. It keeps one
// pick_first child per endpoint (grpc's endpointsharding, as round_robin
// does) and groups the READY children by the label that resolvers attach
// to each resolver.Endpoint with [WithEnv]. Endpoints without a label are
// trunk; endpoints with a malformed label get no traffic at all.
//
// Misses fail fast: when no allowed environment has a ready endpoint (a
// strict service whose lane is absent or failing, or an untagged call with
// no trunk endpoint) the picker returns a codes.Unavailable status, which
// ends the call at once even for wait-for-ready calls. Only while an
// allowed environment's endpoints are still connecting does the picker
// wait (balancer.ErrNoSubConnAvailable) for the next state. Only READY
// endpoints count as a lane: while a project endpoint is still connecting
// (or reconnecting), non-strict calls for its tag are served by the
// fallback environments or trunk.
//
// Endpoints come from any resolver that labels them: [NewResolver] watches
// an envtag.Registry (static, file or etcd), [ManualResolver] serves a fixed
// or test-driven set. Routing rules are envtag.Policy values: from the
// balancer's JSON config ([Config], [ServiceConfigFor]) or, when the config
// has none, envtag.DefaultPolicy read at every pick. Picks are counted per
// service in envtag.Snapshot.
package envbalancer
