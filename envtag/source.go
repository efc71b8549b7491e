package envtag

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
)

// SourceConfig says where an edge entry reads a request's environment tag:
// a header, a cookie and/or a query parameter (empty = not used). When
// several are configured and present, the header wins, then the cookie,
// then the query parameter. Typical use: developers and test tools tag
// browser or curl traffic to reach their project environment
// ("?env=proj-42", a "shadowlane-env" cookie).
type SourceConfig struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Query  string `json:"query,omitempty"`
}

// Extractor reads the environment tag of HTTP requests per a
// [SourceConfig]. It is immutable and safe for concurrent use; a request
// without a tag costs a few map lookups and no allocation.
type Extractor struct {
	header string // canonical
	cookie string
	query  string
}

// NewExtractor validates c.
func NewExtractor(c SourceConfig) (*Extractor, error) {
	if c.Header == "" && c.Cookie == "" && c.Query == "" {
		return nil, fmt.Errorf("envtag: tag source: no header, cookie or query parameter configured")
	}
	for _, n := range []string{c.Header, c.Cookie, c.Query} {
		if strings.ContainsAny(n, " \t\r\n;=,&\"") {
			return nil, fmt.Errorf("envtag: tag source: bad name %q", n)
		}
	}
	x := &Extractor{cookie: c.Cookie, query: c.Query}
	if c.Header != "" {
		x.header = textproto.CanonicalMIMEHeaderKey(c.Header)
	}
	return x, nil
}

// Tag returns the request's environment tag and whether one was present.
// A present but malformed tag is an error wrapping
// [propagation.ErrMalformed] that names where it was found; it is never
// silently treated as untagged.
func (x *Extractor) Tag(r *http.Request) (tag string, found bool, err error) {
	var q string
	if r.URL != nil {
		q = r.URL.RawQuery
	}
	return x.TagFrom(r.Header, q)
}

// TagFrom is [Extractor.Tag] for callers that hold a request's parts rather
// than an *http.Request: its header (canonical keys, as net/http builds it)
// and its raw URL query ("" when unknown: the query source is then not
// consulted). Same precedence and validation as Tag; no allocation when no
// tag is present.
func (x *Extractor) TagFrom(h http.Header, rawQuery string) (tag string, found bool, err error) {
	if x.header != "" {
		if v := h[x.header]; len(v) > 0 {
			return check("header ", x.header, v[0])
		}
	}
	if x.cookie != "" {
		if v, ok := cookieValue(h["Cookie"], x.cookie); ok {
			return check("cookie ", x.cookie, v)
		}
	}
	if x.query != "" && rawQuery != "" {
		if v, ok := QueryValue(rawQuery, x.query); ok {
			return check("query parameter ", x.query, v)
		}
	}
	return "", false, nil
}

// HeaderName returns the canonical name of the header source ("" when the
// extractor reads no header).
func (x *Extractor) HeaderName() string { return x.header }

// check validates a found tag; the message is built only on error, so a
// valid tag costs no allocation.
func check(kind, name, v string) (string, bool, error) {
	if !propagation.ValidID(v) {
		return "", true, fmt.Errorf("envtag: %s%s: tag %s: %w", kind, name, quote(v), propagation.ErrMalformed)
	}
	return v, true, nil
}

// cookieValue finds cookie name in Cookie header lines without allocating.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// QueryValue returns the first value of parameter name in a raw query
// string, unescaped, without allocating unless the value is escaped. It
// exists so that an edge reading one parameter need not parse the whole
// query; malformed escapes come back raw (and then fail validation).
func QueryValue(rawQuery, name string) (string, bool) {
	q := rawQuery
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != name {
			if strings.ContainsAny(k, "%+") {
				if uk, err := url.QueryUnescape(k); err == nil && uk == name {
					return unescapeQuery(v), true
				}
			}
			continue
		}
		return unescapeQuery(v), true
	}
	return "", false
}

func unescapeQuery(v string) string {
	if !strings.ContainsAny(v, "%+") {
		return v
	}
	if u, err := url.QueryUnescape(v); err == nil {
		return u
	}
	return v
}

// Middleware returns net/http middleware that sets the environment tag of
// the request's mark from the extractor's sources (keeping the run id of
// any mark an earlier middleware set), so that downstream calls route to
// the tagged environment. A malformed tag is answered with 400 Bad
// Request; the handler is not called.
func (x *Extractor) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tag, found, err := x.Tag(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if found {
			ctx := r.Context()
			m := propagation.FromContext(ctx)
			m.Env = tag
			r = r.WithContext(propagation.WithToken(ctx, m, propagation.TokenFromContext(ctx)))
		}
		next.ServeHTTP(w, r)
	})
}
