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
// Connect grace: an endpoint that stays CONNECTING (its server accepts the
// connection but never answers, so gRPC would keep it connecting for its
// ~20 s connect timeout) counts as pending for envtag.Config.ConnectGrace
// only (default envtag.DefaultConnectGrace, 1 s; "connectGrace":"300ms" in
// the balancer config, routing.connectGrace in shadowlane's YAML). After
// that it is no candidate until it turns READY, so a strict call whose
// lane has nothing else fails with codes.Unavailable (envtag.ErrNoLane's
// message) instead of waiting out its deadline, wait-for-ready or not.
//
// Conflicts: a resolver update that lists one address under two
// environment labels is refused (balancer.ErrBadResolverState, logged
// naming the address) and the previous endpoints stay in force; with none
// yet, calls fail fast with Unavailable naming the conflict. [NewResolver]
// refuses such a set from its registry the same way, before gRPC sees it.
//
// Endpoints come from any resolver that labels them: [NewResolver] watches
// an envtag.Registry (static, file or etcd), [ManualResolver] serves a fixed
// or test-driven set. Routing rules are envtag.Policy values: from the
// balancer's JSON config ([Config], [ServiceConfigFor]) or, when the config
// has none, envtag.DefaultPolicy read at every pick. Picks are counted per
// service in envtag.Snapshot.
//
// Zones: endpoints labelled with [WithZone] (registry "zone") are picked
// same zone first within the chosen lane (envtag.Config.Zone, ZoneSpill).
// A load-test run pinned to a zone (envtag.Config.Pin, "pin" in the
// balancer config, routing.pin in shadowlane's YAML) is served only by
// that zone's READY endpoints of the lane; with none, its calls fail at
// once with codes.Unavailable naming the pin (envtag.PinError), never
// spilling to another zone; while the zone's endpoints are still
// connecting the pick waits, as for a connecting lane.
package envbalancer
