// Package propagation carries the shadowlane mark — the load-test run id and
// the environment tag of a request — through [context.Context] and over the
// wire.
//
// On the wire a mark travels in shadowlane's own headers
// (X-Shadowlane-Run, X-Shadowlane-Env, X-Shadowlane-Token by default) and as
// W3C baggage members (shadowlane.run, shadowlane.env, shadowlane.token), so
// that a hop instrumented only with OpenTelemetry (otelhttp/otelgrpc with the
// Baggage propagator) forwards it untouched. [Propagator] is an OpenTelemetry
// TextMapPropagator that reads and writes both forms.
//
// Load-test marks arriving at an edge are honoured only with a valid signed
// token ([Keyring], [Keyring.Sign], [Keyring.VerifyClaims]); [Policy.Decide]
// holds the rules:
//
//	carrier on an inbound request          edge entry (default)                    internal entry
//	nothing                                production                              production
//	valid token (alone, or with a          load-test, run/env from the token       load-test
//	  matching run/env)
//	run/token/baggage member failing       refused: 403 / PermissionDenied         as sent (disagreeing
//	  verification, any case, any line       (strip only by explicit choice)         runs refused)
//	env tag only                           env routing, production                 env routing
//
// The default refuses because a request carrying a load-test indicator was
// meant as load-test traffic: continuing it as production (strip) turns an
// expired token into production load on real data and third parties.
//
// [Codec.Extract], [Codec.Present] and [Codec.Strip] agree on what a
// carrier is: the own headers in any letter case and behind grpc-gateway's
// "Grpc-Metadata-" prefix, on every line (values also split at commas, so a
// hop that joins lines hides nothing), and the members on every baggage
// line. Values that disagree are a conflict ([DropConflict], [ErrConflict]).
// Entries strip every carrier after deciding, so only the decided mark
// travels on, in the context.
//
// Reading a mark ([FromContext]) never allocates; an unmarked request costs
// one pass over its header keys and no allocation.
//
// # Work moved off the request
//
// The mark lives only in the context, so work that leaves the request's
// goroutine keeps it only if it takes the context along:
//
//   - Work that must outlive the request (an audit write after the response,
//     a cache refresh) runs under [context.WithoutCancel](ctx): it keeps the
//     mark and every other value, and is not canceled with the request. Add
//     a deadline with context.WithTimeout(context.WithoutCancel(ctx), d).
//   - Worker pools and in-process queues carry the context in the job (a
//     ctx field of the job struct, or a func(context.Context) task called
//     with it); a worker runs each job under the job's context, never under
//     one of its own.
//   - context.Background() or context.TODO() where a request context is in
//     scope starts production work: a go func() that uses them inside a
//     handler sends the load test's writes to production tables, keys and
//     topics as if they were production.
//
// shadowlane-vet (`shadowlane vet`, module github.com/shadowlane/shadowlane/vet)
// reports these mistakes, and calls without a context, with fixes.
package propagation
