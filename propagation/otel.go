package propagation

import (
	"context"

	otelprop "go.opentelemetry.io/otel/propagation"
)

// Propagator is an OpenTelemetry TextMapPropagator for the mark. Inject
// writes the own headers and merges the baggage members; Extract reads them
// (own headers first, then baggage), applies the trust [Policy] and stores
// the result with [WithToken]. It composes with the TraceContext and Baggage
// propagators: put it after Baggage in a composite propagator so the
// baggage it merges into is the one Baggage wrote (shadowlane.Init does).
type Propagator struct {
	Codec  *Codec                        // nil: DefaultCodec
	Policy *Policy                       // nil: trust marks as sent (internal)
	OnWire func(w Wire, untrusted error) // optional: observe every extraction that found something
}

var _ otelprop.TextMapPropagator = Propagator{}

func (p Propagator) codec() *Codec {
	if p.Codec == nil {
		return defaultCodec
	}
	return p.Codec
}

// Inject implements TextMapPropagator.
func (p Propagator) Inject(ctx context.Context, carrier otelprop.TextMapCarrier) {
	v, _ := ctx.Value(ctxKey{}).(*ctxValue)
	if v == nil || v.m.IsZero() {
		return
	}
	p.codec().Inject(v.m, v.token, carrier)
}

// Extract implements TextMapPropagator. A carrier without a mark leaves ctx
// as it is.
func (p Propagator) Extract(ctx context.Context, carrier otelprop.TextMapCarrier) context.Context {
	w := p.codec().Extract(carrier)
	if w.Source == SourceNone && w.Dropped == 0 {
		return ctx
	}
	m, tok, err := p.Policy.Decide(w)
	if p.OnWire != nil {
		p.OnWire(w, err)
	}
	if m.IsZero() && !HasMark(ctx) {
		return ctx
	}
	return WithToken(ctx, m, tok)
}

// Fields implements TextMapPropagator.
func (p Propagator) Fields() []string {
	n := p.codec().n
	return []string{n.RunHeader, n.EnvHeader, n.TokenHeader, "baggage"}
}
