package shadowlane

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Entry describes one inbound entry for [Runtime.Admit].
type Entry struct {
	// Name labels the entry in logs ("http", "gin", "grpc", ...).
	Name string
	// Trust overrides the runtime's configured trust for this entry.
	Trust *propagation.Trust
	// RouteOf, when set, names the route of a marked HTTP request that
	// has none yet (no ServeMux pattern, no route passed to
	// [Runtime.AdmitRoute]) for the per-run evidence: a template such as
	// "GET /orders/{id}", never the raw path, or "" when it does not know.
	// It is called for marked requests only (middleware.Handler sets it
	// when it wraps an *http.ServeMux).
	RouteOf func(*http.Request) string

	// lower says the carrier's keys are lowercase (gRPC metadata); set
	// through internal/edge.LowerKeys.
	lower bool
}

// Refusal is an entry's decision not to serve a request.
type Refusal struct {
	HTTPStatus int    // 503 (kill switch) or 403 (untrusted, when rejecting)
	GRPCCode   uint32 // 14 Unavailable or 7 PermissionDenied (google.golang.org/grpc/codes values)
	Reason     string // short word: "killswitch", "untrusted"
	Err        error  // wraps shadow.ErrKillSwitch or propagation.ErrUntrusted
}

// Body is the text sent to refused HTTP callers.
func (r *Refusal) Body() string { return r.Err.Error() + "\n" }

// RequestCarrier returns the carrier HTTP entries pass to [Runtime.Admit]
// for r: it reads headers like r.Header does and, in addition, lets the
// configured routing.tagSource query parameter be read. (Passing r.Header
// works too; only the query source is then unavailable.) It does not
// allocate.
func RequestCarrier(r *http.Request) propagation.Getter { return requestCarrier{r} }

type requestCarrier struct{ r *http.Request }

// HeaderMap lets [Runtime.Admit] read every line and letter case of the
// mark carriers (propagation.HeaderMap).
func (c requestCarrier) HeaderMap() map[string][]string { return c.r.Header }

// Get indexes the header map directly: the codec asks with canonical keys
// and net/http's server stores canonical keys, so the canonicalisation
// http.Header.Get would redo on every look-up is skipped.
func (c requestCarrier) Get(key string) string {
	if v := c.r.Header[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Admit is the inbound pipeline every entry runs: read the mark from g,
// apply the trust policy, apply the kill switch, and return the context the
// handler must use. An unmarked request costs one pass over the carrier's
// keys (or a few look-ups) and no allocation.
//
// At an edge (the default) a request with any load-test indicator — a run
// or token header or baggage member, on any line, in any letter case of the
// header name — is load-test traffic only with a token that verifies (the
// token alone is enough: run and env come from it). Otherwise it is refused
// with HTTP 403 / gRPC PermissionDenied and the reason (trust.onUntrusted:
// reject, the default), or continues as production when the config says
// strip. Refusals are counted (Stats().TokensRejected) and logged without
// flooding.
//
// A header-map carrier ([RequestCarrier], http.Header,
// propagation.HeaderMap) is read whole; when g is a [RequestCarrier], Admit
// also removes every mark carrier from the request's headers, so the
// handler, a reverse proxy or a client that copies inbound headers cannot
// forward an unverified mark: only the decided mark travels on, in the
// context. Entries on other carriers strip them themselves (the gRPC
// interceptors do).
func (rt *Runtime) Admit(ctx context.Context, e *Entry, g propagation.Getter) (context.Context, *Refusal) {
	return rt.AdmitRoute(ctx, e, g, "")
}

// AdmitRoute is [Runtime.Admit] for an entry whose router already matched
// the request: route names it in the per-run evidence (a bounded
// template: gin's c.FullPath(), a gRPC full method name; never the raw
// path). With route "" the route is the ServeMux pattern of an HTTP
// request (r.Pattern), else [Entry.RouteOf], else the method.
func (rt *Runtime) AdmitRoute(ctx context.Context, e *Entry, g propagation.Getter, route string) (context.Context, *Refusal) {
	st := rt.st.Load()
	if _, ok := g.(propagation.Absent); ok {
		return rt.admitAbsent(ctx, e, st, g, route)
	}
	var w propagation.Wire
	var h map[string][]string
	isMap := false
	if rc, ok := g.(requestCarrier); ok { // the HTTP entries' carrier: no interface assertion
		h, isMap = rc.r.Header, true
	} else {
		h, isMap = propagation.AsHeaderMap(g)
	}
	present := false
	switch {
	case isMap:
		if present = st.codec.Present(h); present {
			w = st.codec.ExtractHeader(h)
		}
	default:
		w = st.codec.ExtractGetter(g, e != nil && e.lower)
	}
	st.edgeTag(e, g, &w) // routing.tagSource: env tag from a header, cookie or query parameter at edges
	if w.Source == propagation.SourceNone && w.Dropped == 0 && !w.LoadTest {
		// Nothing on the carrier: production. A mark already in ctx can only
		// come from the app itself (a propagator that found one would have
		// found it on this same carrier), so it is left alone.
		if present {
			stripCarrier(g, st.codec)
		}
		rt.stats.production.Add(1)
		return ctx, nil
	}
	ctx, ref := rt.admitSlow(ctx, e, st, w, g, route)
	if present {
		stripCarrier(g, st.codec)
	}
	return ctx, ref
}

// admitAbsent is AdmitRoute for [propagation.Absent]: no mark to read
// (only the routing tag, which an entry passing Absent has found absent
// too, is still looked for), so production unless edgeTag finds one.
func (rt *Runtime) admitAbsent(ctx context.Context, e *Entry, st *compiled, g propagation.Getter, route string) (context.Context, *Refusal) {
	var w propagation.Wire
	st.edgeTag(e, g, &w)
	if w.Source == propagation.SourceNone && w.Dropped == 0 && !w.LoadTest {
		rt.stats.production.Add(1)
		return ctx, nil
	}
	return rt.admitSlow(ctx, e, st, w, g, route)
}

// stripCarrier removes the mark carriers from an HTTP request's headers.
func stripCarrier(g propagation.Getter, c *propagation.Codec) {
	if rc, ok := g.(requestCarrier); ok {
		c.Strip(rc.r.Header)
	}
}

func (rt *Runtime) admitSlow(ctx context.Context, e *Entry, st *compiled, w propagation.Wire, g propagation.Getter, route string) (context.Context, *Refusal) {
	name := "entry"
	trust := st.trust
	if e != nil {
		if e.Trust != nil {
			trust = *e.Trust
		}
		if e.Name != "" {
			name = e.Name
		}
	}
	if w.Dropped != 0 {
		for _, r := range w.Dropped.Reasons() {
			rt.stats.dropped(r)
			rt.logs.warn("drop:"+r, "shadowlane: dropped a malformed mark value", "entry", name, "reason", r)
		}
	}
	p := propagation.Policy{Trust: trust, Keyring: st.keyring, Now: rt.now, RequireEnvBinding: st.requireEnvBinding}
	m, tok, err := p.Decide(w)
	if err != nil {
		reason := propagation.TokenReason(err)
		rt.stats.tokenRejected(reason)
		if st.rejectUntrusted {
			rt.stats.untrustedRefused.Add(1)
			rt.logs.warn("token:"+reason, "shadowlane: load-test request refused: mark not trusted", "entry", name, "reason", reason, "run", w.Mark.Run, "error", err.Error())
			return ctx, &Refusal{HTTPStatus: http.StatusForbidden, GRPCCode: 7, Reason: "untrusted", Err: err}
		}
		rt.logs.warn("token:"+reason, "shadowlane: load-test mark not trusted; continuing as production (trust.onUntrusted: strip)", "entry", name, "reason", reason, "run", w.Mark.Run, "error", err.Error())
	}
	if m.Run != "" {
		if k := rt.kill.Load(); !k.enabled {
			rt.runs.entry(m.Run, name, routeOf(e, g, route), true)
			rt.stats.killRefused.Add(1)
			msg := "load-test traffic is switched off"
			if k.reason != "" {
				msg += ": " + k.reason
			}
			return ctx, &Refusal{HTTPStatus: http.StatusServiceUnavailable, GRPCCode: 14, Reason: "killswitch",
				Err: fmt.Errorf("shadowlane: %s (%w)", msg, shadow.ErrKillSwitch)}
		}
	}
	rt.stats.request(m)
	if m.Run != "" {
		rt.runs.entry(m.Run, name, routeOf(e, g, route), false)
	}
	if m.IsZero() {
		if propagation.HasMark(ctx) {
			ctx = propagation.With(ctx, propagation.Mark{})
		}
		return ctx, nil
	}
	annotateSpan(ctx, m)
	return propagation.WithToken(ctx, m, tok), nil
}

// routeOf names the route of a request for the per-run evidence: the
// route the entry passed; for an HTTP request the net/http ServeMux
// pattern when it was already routed (it names the method when the
// pattern does), else what e.RouteOf says, else the method (a standard
// one; any other is "other"); "" when the carrier does not say. Never the
// path: the route is a bounded label.
func routeOf(e *Entry, g propagation.Getter, route string) string {
	if route != "" {
		return route
	}
	if rc, ok := g.(requestCarrier); ok && rc.r != nil {
		if rc.r.Pattern != "" {
			return rc.r.Pattern
		}
		if e != nil && e.RouteOf != nil {
			if p := e.RouteOf(rc.r); p != "" {
				return p
			}
		}
		return boundedMethod(rc.r.Method)
	}
	return ""
}

// boundedMethod is m when it is a standard HTTP method, else "other".
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

func annotateSpan(ctx context.Context, m propagation.Mark) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if m.Run != "" {
		span.SetAttributes(attribute.String("shadowlane.run", m.Run))
	}
	if m.Env != "" {
		span.SetAttributes(attribute.String("shadowlane.env", m.Env))
	}
}

// Propagator returns an OpenTelemetry propagator bound to this runtime's
// codec and trust policy (marks extracted through it are counted like
// marks read by entries).
func (rt *Runtime) Propagator() propagation.Propagator {
	st := rt.st.Load()
	return propagation.Propagator{
		Codec:  st.codec,
		Policy: &propagation.Policy{Trust: st.trust, Keyring: st.keyring, Now: rt.now, RequireEnvBinding: st.requireEnvBinding},
		OnWire: func(w propagation.Wire, err error) {
			for _, r := range w.Dropped.Reasons() {
				rt.stats.dropped(r)
			}
			if err != nil {
				rt.stats.tokenRejected(propagation.TokenReason(err))
			}
		},
	}
}
