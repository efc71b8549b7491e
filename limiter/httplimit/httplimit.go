package httplimit

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/shadowlane/shadowlane/internal/httpstatus"
	"github.com/shadowlane/shadowlane/limiter"
)

type config struct {
	key     func(*http.Request) string
	blocked func(http.ResponseWriter, *http.Request, *limiter.BlockError)
}

// Option configures [Middleware].
type Option func(*config)

// WithRouteKey names the resource of each request. Return a low-cardinality
// name such as a route template ("GET /orders/:id"), never a raw path with
// ids in it.
func WithRouteKey(fn func(*http.Request) string) Option {
	return func(c *config) { c.key = fn }
}

// WithBlockedHandler replaces the default 429 response. The RateLimit and
// Retry-After headers are set before it is called.
func WithBlockedHandler(fn func(http.ResponseWriter, *http.Request, *limiter.BlockError)) Option {
	return func(c *config) { c.blocked = fn }
}

// DefaultRouteKey is r.Pattern when a ServeMux has set it, else
// "METHOD /path".
func DefaultRouteKey(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return r.Method + " " + r.URL.Path
}

// Middleware returns net/http middleware that admits every request through
// l. Requests the limiter refuses with an error other than a
// *limiter.BlockError (none today) get 503. An admitted request is exited
// when the handler returns: as an error when it panicked or answered with
// a 5xx status (an informational 1xx status, such as 103 Early Hints, is
// not the answer). The handler's writer keeps http.Flusher, http.Hijacker
// and io.ReaderFrom where the server's writer has them, and Unwrap for
// http.ResponseController.
func Middleware(l *limiter.Limiter, opts ...Option) func(http.Handler) http.Handler {
	c := config{key: DefaultRouteKey, blocked: tooMany}
	for _, o := range opts {
		o(&c)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := Admit(l.Resource(c.key(r)), r)
			if err != nil {
				var be *limiter.BlockError
				if !errors.As(err, &be) {
					http.Error(w, "unavailable", http.StatusServiceUnavailable)
					return
				}
				SetHeaders(w.Header(), be)
				c.blocked(w, r, be)
				return
			}
			sw := writers.Get().(*httpstatus.Writer)
			sw.Reset(w)
			failed := true
			defer func() {
				if failed || sw.Status() >= 500 {
					tok.ExitErr(errServer)
				} else {
					tok.Exit()
				}
				sw.Reset(nil)
				writers.Put(sw)
			}()
			next.ServeHTTP(sw.View(), r)
			failed = false
		})
	}
}

var errServer = errors.New("httplimit: server error")

var writers = sync.Pool{New: func() any { return new(httpstatus.Writer) }}

func tooMany(w http.ResponseWriter, _ *http.Request, be *limiter.BlockError) {
	http.Error(w, "too many requests ("+be.Reason.String()+")", http.StatusTooManyRequests)
}

// SetHeaders sets Retry-After (whole seconds, at least 1) and the
// RateLimit / RateLimit-Policy fields of the IETF ratelimit-headers draft
// for be: the policy is named after the rule; a rate rule announces its
// quota per 1-second window (q, w), and RateLimit says none remains (r=0)
// until t seconds from now. For clients written against the earlier drafts
// it also sets RateLimit-Limit (rate rules), RateLimit-Remaining (0) and
// RateLimit-Reset (t).
func SetHeaders(h http.Header, be *limiter.BlockError) {
	secs := int64(math.Ceil(be.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	t := strconv.FormatInt(secs, 10)
	h.Set("Retry-After", t)
	name := sfString(be.Rule)
	if be.Reason == limiter.ReasonQPS || be.Reason == limiter.ReasonQueue {
		q := strconv.FormatInt(int64(math.Ceil(be.Limit)), 10)
		h.Set("RateLimit-Policy", name+";q="+q+";w=1")
		h.Set("RateLimit-Limit", q)
	}
	h.Set("RateLimit", name+";r=0;t="+t)
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", t)
}

// sfString renders s as an RFC 8941 structured-field string: printable
// ASCII only, with '"' and '\' escaped.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('_')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Admit admits r under res, resolving hot-parameter rules' keys with
// [RequestParams] when res has any.
func Admit(res *limiter.Resource, r *http.Request) (limiter.Token, error) {
	if res.HasParamRules() {
		return res.EntryParams(r.Context(), RequestParams(r))
	}
	return res.Entry(r.Context())
}

// RequestParams resolves hot-parameter keys against r: "header:<Name>"
// is the header's first value, "query:<name>" the query parameter's, and
// "method" and "host" what they say. Other keys resolve to "".
func RequestParams(r *http.Request) limiter.Params { return requestParams{r} }

type requestParams struct{ r *http.Request }

func (p requestParams) Param(key string) string {
	switch {
	case strings.HasPrefix(key, "header:"):
		return p.r.Header.Get(key[len("header:"):])
	case strings.HasPrefix(key, "query:"):
		return p.r.URL.Query().Get(key[len("query:"):])
	case key == "method":
		return p.r.Method
	case key == "host":
		return p.r.Host
	}
	return ""
}
