// Package envtag routes requests between trunk and project environments.
//
// Every instance belongs to one environment, named by [EnvVar]
// (SHADOWLANE_ENV; empty = trunk, read with [Self]). Every request carries
// an environment tag, propagation.FromContext(ctx).Env (empty = untagged).
// The selection rule, implemented once by [Pool] and used by the gRPC
// balancer (adapters/slgrpc/envbalancer) and the HTTP client [Transport]:
//
//   - a tagged request goes to a ready instance of its own environment;
//   - else, unless the service is strict, to the tag's configured fallback
//     environments in order, then to trunk;
//   - else it fails with a [*RouteError] (errors.Is [ErrNoLane]).
//   - An untagged request goes to trunk or fails. It never reaches a
//     project instance, even when no trunk instance exists; neither does
//     any request reach an instance whose label is malformed.
//
// Rules come from a [Config] validated into a [Policy] (strict mode globally
// or per service, fallbacks per tag); [DefaultPolicy], used where none is
// given, is the default shadowlane Runtime's routing policy (installed
// with [SetDefaultPolicyFunc]; [SetDefaultPolicy] overrides it), and
// [WithPolicyFunc] binds a transport to one runtime's policy instead. Tags enter at the edge from a header, cookie or
// query parameter ([Extractor]), validated with propagation.ValidID.
// Instances are found in a [Registry] that is watched, so instances coming
// and going change routing without restarts: [StaticRegistry],
// [FileRegistry] (JSON, reloadable) and etcd v3 in the envtag/etcd module.
//
// A registry never holds one address under two environments: a set that
// lists one does not load ([ErrConflict], naming the address; static and
// file registries keep the previous set, etcd withholds the address).
// The HTTP [Transport] is health-aware ([HealthConfig]): instances whose
// connections fail are ejected and re-probed, and a request that failed
// to connect is retried on another instance of the same lane, never in
// another environment. [Config.ConnectGrace] bounds how long a balancer
// waits for instances still connecting before failing with [ErrNoLane].
//
// Same zone first: an instance may carry a zone label ([Endpoint].Zone,
// "zone" in registry files, envbalancer.WithZone for gRPC resolvers). With
// [Config.Zone] set (shadowlane: routing.zone or SHADOWLANE_ZONE), a pick
// within the lane the rule above chose prefers the caller's zone, and
// spills round robin over every zone of that lane when the local share of
// its healthy instances falls below [Config.ZoneSpill] ([ZoneSpills]
// states the rule). Zone only orders instances within a lane: it never
// changes which environment serves a request. Retries ([Pool.Another])
// try the other local instances of the lane first, then the rest of it.
//
// Single-room pressure test: [Config.Pin] (shadowlane: routing.pin) pins a
// load-test run to one zone. Within the lane the env rule chose, its picks
// go only to that zone's ready instances; with none there the pick fails
// closed with a [*PinError] (errors.Is [ErrZonePinned] and [ErrNoLane]),
// never spilling to another zone or lane, and retries ([Pool.AnotherFor])
// stay in the zone. Production traffic and unpinned runs are untouched.
// The pin is keyed by run id, which the edge's signed token vouches for,
// so it needs no new wire field.
//
// Every pick is counted per downstream service and traffic class: lane
// hits, fallbacks, trunk picks and misses, in a [Stats] (one per
// shadowlane Runtime, given with [WithStats] / [PoolStats], else the
// default Runtime's: [Snapshot]; a Runtime exports its own as the
// OpenTelemetry observable counter shadowlane.envtag.picks); picks by a
// caller with a zone are also counted as same-zone or spilled
// ([Stats.Zone], [Count].SameZone/Spilled, shadowlane.envtag.zone_picks),
// and pinned picks as served or refused ([Count].Pinned/PinRefused,
// shadowlane.envtag.pinned_picks).
//
// The package also holds the lane filter that message consumers use
// ([Lanes]): a trunk consumer skips messages of environments that have a
// live lane consumer of their own.
package envtag
