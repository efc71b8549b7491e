package middleware

import (
	"context"
	"net/http"
	"strconv"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/internal/httpstatus"
	"github.com/shadowlane/shadowlane/propagation"
)

// Option configures an entry or exit.
type Option func(*Config)

// Config is the resolved configuration of an entry or exit. Adapters in
// other modules build it with [NewConfig].
type Config struct {
	// Runtime to use; nil means shadowlane.Default() at request time.
	Runtime *shadowlane.Runtime
	// Entry is passed to Runtime.Admit.
	Entry shadowlane.Entry
}

// NewConfig applies opts over defaults; name labels the entry.
func NewConfig(name string, opts ...Option) *Config {
	c := &Config{Entry: shadowlane.Entry{Name: name}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithRuntime uses rt instead of the default runtime.
func WithRuntime(rt *shadowlane.Runtime) Option { return func(c *Config) { c.Runtime = rt } }

// WithTrust sets this entry's trust, overriding trust.mode from the config:
// [propagation.Edge] for entries facing untrusted callers,
// [propagation.Internal] for entries only our own services reach.
func WithTrust(t propagation.Trust) Option { return func(c *Config) { c.Entry.Trust = &t } }

// Edge is WithTrust(propagation.Edge).
func Edge() Option { return WithTrust(propagation.Edge) }

// Internal is WithTrust(propagation.Internal).
func Internal() Option { return WithTrust(propagation.Internal) }

// WithName labels the entry in logs.
func WithName(name string) Option { return func(c *Config) { c.Entry.Name = name } }

// RT returns the runtime to use now.
func (c *Config) RT() *shadowlane.Runtime { return shadowlane.OrDefault(c.Runtime) }

// Handler returns net/http server middleware: it admits every request
// through the runtime (mark extraction, edge trust, kill switch) and serves
// next with the marked context, or answers refused requests itself (503 with
// a reason body while load-test traffic is switched off; 403 for untrusted
// marks when the config rejects them).
//
// Marked requests are counted per run in the runtime's evidence
// (GET /shadowlane/status?run=R): under the route r.Pattern when a
// ServeMux routed the request before the middleware ran, the pattern the
// wrapped *http.ServeMux matches when next is one, else the method. A
// marked request whose answer is a 5xx status, or whose handler panics,
// counts an error of the run ("http 503", "http panic").
func Handler(next http.Handler, opts ...Option) http.Handler {
	c := NewConfig("http", opts...)
	if mux, ok := next.(*http.ServeMux); ok && c.Entry.RouteOf == nil {
		c.Entry.RouteOf = muxRoute(mux)
	}
	return &handler{next: next, c: c}
}

// muxRoute names a marked request's route by the pattern mux matches
// ("" when none does). CONNECT requests are left to the method: for them
// the mux may answer a redirect's raw path instead of a pattern.
func muxRoute(mux *http.ServeMux) func(*http.Request) string {
	return func(r *http.Request) string {
		if r.Method == http.MethodConnect {
			return ""
		}
		_, p := mux.Handler(r)
		return p
	}
}

type handler struct {
	next http.Handler
	c    *Config
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx0 := r.Context()
	ctx, ref := h.c.RT().Admit(ctx0, &h.c.Entry, shadowlane.RequestCarrier(r))
	if ref != nil {
		WriteRefusal(w, ref)
		return
	}
	if ctx != ctx0 {
		r = r.WithContext(ctx)
		if propagation.FromContext(ctx).Run != "" {
			ServeMarked(h.c.RT(), "http", h.next, w, r)
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// ServeMarked serves a marked (load-test) request r with next and counts
// in the run's evidence an answer with a 5xx status ("<entry> 503") or a
// panic of the handler ("<entry> panic"; the panic goes on unchanged).
// Entries call it for marked requests only: it wraps w to see the status
// (the wrapper keeps http.Flusher, http.Hijacker and io.ReaderFrom when w
// has them, and Unwrap for http.ResponseController).
func ServeMarked(rt *shadowlane.Runtime, entry string, next http.Handler, w http.ResponseWriter, r *http.Request) {
	sw := httpstatus.New(w)
	done := false
	defer func() {
		if !done {
			rt.RunError(r.Context(), entry+" panic")
		}
	}()
	next.ServeHTTP(sw.View(), r)
	done = true
	if s := sw.Status(); s >= 500 {
		rt.RunError(r.Context(), StatusReason(entry, s))
	}
}

// StatusReason is the per-run error reason of an answer with status code
// at entry: "http 503". Codes outside 100..999 are "<entry> status".
func StatusReason(entry string, code int) string {
	if code < 100 || code > 999 {
		return entry + " status"
	}
	return entry + " " + strconv.Itoa(code)
}

// WriteRefusal answers a refused HTTP request: the refusal's status, a
// text/plain body with the reason and an X-Shadowlane-Refused header.
func WriteRefusal(w http.ResponseWriter, ref *shadowlane.Refusal) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Shadowlane-Refused", ref.Reason)
	w.WriteHeader(ref.HTTPStatus)
	_, _ = w.Write([]byte(ref.Body()))
}

// Transport returns an http.RoundTripper (base nil: http.DefaultTransport)
// for outbound calls:
//   - a marked request carries its mark (own headers + baggage members, and
//     the token) to the next hop;
//   - a load-test request to a host that is not on outbound.allow is answered
//     by its configured mock, or fails with an error wrapping
//     shadow.ErrBlocked; it never reaches the third party;
//   - an unmarked request passes untouched, except that mark headers it
//     carries (say, copied by a proxy from an inbound request whose forged
//     mark the edge stripped) are removed, so they cannot be honoured
//     downstream.
func Transport(base http.RoundTripper, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, c: NewConfig("http-client", opts...)}
}

type transport struct {
	base http.RoundTripper
	c    *Config
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	m := propagation.FromContext(ctx)
	rt := t.c.RT()
	codec := rt.Codec()
	if m.Run == "" && rt.TestData() != nil { // the lost-mark guard (testData:)
		if err := rt.CheckOutboundHTTP(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	if m.IsZero() {
		if !codec.Present(req.Header) {
			return t.base.RoundTrip(req)
		}
		r2 := req.Clone(ctx)
		codec.Strip(r2.Header)
		return t.base.RoundTrip(r2)
	}
	if resp, err := rt.Outbound(ctx, req); resp != nil || err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return resp, err
	}
	r2 := req.Clone(ctx)
	codec.Strip(r2.Header)
	codec.Inject(m, propagation.TokenFromContext(ctx), r2.Header)
	return t.base.RoundTrip(r2)
}

// Client returns a copy of c (nil: a new client) whose transport is
// wrapped with [Transport].
func Client(c *http.Client, opts ...Option) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.Transport = Transport(out.Transport, opts...)
	return &out
}

// ContextWithMark is a convenience for code that starts work outside a
// request (jobs, load generators): it returns ctx marked with m.
func ContextWithMark(ctx context.Context, m propagation.Mark, token string) context.Context {
	return propagation.WithToken(ctx, m, token)
}
