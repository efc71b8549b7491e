package httplimit

import (
	"net/http"

	"github.com/shadowlane/shadowlane/limiter"
)

type transportConfig struct {
	key     func(*http.Request) string
	failure func(*http.Response, error) bool
}

// TransportOption configures [Transport].
type TransportOption func(*transportConfig)

// WithClientKey names the resource of each outgoing request (default
// [DefaultClientKey]). Return a low-cardinality name, never a raw URL.
func WithClientKey(fn func(*http.Request) string) TransportOption {
	return func(c *transportConfig) { c.key = fn }
}

// WithFailure decides which outcomes count as errors for breakers and
// metrics (default: a transport error or a 5xx status).
func WithFailure(fn func(*http.Response, error) bool) TransportOption {
	return func(c *transportConfig) { c.failure = fn }
}

// DefaultClientKey names an outgoing request "http:METHOD host", e.g.
// "http:GET payments.internal:8443".
func DefaultClientKey(r *http.Request) string {
	return "http:" + r.Method + " " + r.URL.Host
}

func defaultFailure(resp *http.Response, err error) bool {
	return err != nil || resp == nil || resp.StatusCode >= 500
}

// Transport returns an http.RoundTripper that admits every outgoing
// request through l before handing it to base (http.DefaultTransport when
// nil). A refused request is not sent: RoundTrip returns the
// *limiter.BlockError (http.Client wraps it in a *url.Error; errors.As and
// errors.Is(err, limiter.ErrBlocked) see through). The request is exited
// when base returns the response headers (or an error), so a concurrency
// rule bounds requests waiting for a response, not bodies being read.
func Transport(l *limiter.Limiter, base http.RoundTripper, opts ...TransportOption) http.RoundTripper {
	c := transportConfig{key: DefaultClientKey, failure: defaultFailure}
	for _, o := range opts {
		o(&c)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{l: l, base: base, c: c}
}

type transport struct {
	l    *limiter.Limiter
	base http.RoundTripper
	c    transportConfig
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := Admit(t.l.Resource(t.c.key(r)), r)
	if err != nil {
		if r.Body != nil {
			r.Body.Close() // RoundTrip must close the body, even on errors
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(r)
	if t.c.failure(resp, err) {
		tok.ExitErr(errFailed)
	} else {
		tok.Exit()
	}
	return resp, err
}

var errFailed = &failedError{}

type failedError struct{}

func (*failedError) Error() string { return "httplimit: request failed" }
