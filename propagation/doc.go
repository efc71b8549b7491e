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
// token ([Keyring], [Sign], [Keyring.Verify]); see the trust rules in
// [Codec.Extract].
//
// Reading a mark ([FromContext]) never allocates; an unmarked request costs a
// few header look-ups.
package propagation
