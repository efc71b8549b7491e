package slgin

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/httplimit"
)

// Unmatched is the route part of the resource name of requests that match
// no route: "GET _unmatched".
const Unmatched = "_unmatched"

// Limit returns gin middleware that admits every request through a flow
// limiter under the resource "METHOD route", with the route template
// from c.FullPath() ("GET /orders/:id"). Register it after [Middleware] so
// the request's traffic class (production or load-test) is known:
//
//	r.Use(slgin.Middleware(slgin.WithRuntime(rt)), slgin.Limit(slgin.WithRuntime(rt)))
//
// It uses the limiter of the runtime (see [WithRuntime]), configured by
// its "limits:" section, or the one given [WithLimiter]. A refused request is aborted with
// HTTP 429, Retry-After and RateLimit headers (see httplimit.SetHeaders);
// an admitted one is exited when the rest of the chain returns. Resource
// handles are cached per route, so an admitted request does not allocate.
// Hot-parameter rules (limiter.ParamRule) resolve "header:<Name>" and
// "query:<name>" keys against the request (see httplimit.RequestParams).
func Limit(opts ...Option) gin.HandlerFunc {
	cfg := newConfig(opts)
	var cache atomic.Pointer[routeCache]
	return func(c *gin.Context) {
		lim := cfg.Limiter()
		rc := cache.Load()
		if rc == nil || rc.l != lim {
			rc = &routeCache{l: lim}
			cache.Store(rc)
		}
		tok, err := httplimit.Admit(rc.resource(c.Request.Method, c.FullPath()), c.Request)
		if err != nil {
			var be *limiter.BlockError
			if !errors.As(err, &be) {
				c.AbortWithStatus(http.StatusServiceUnavailable)
				return
			}
			httplimit.SetHeaders(c.Writer.Header(), be)
			cfg.blocked(c, be)
			return
		}
		ok := false
		defer func() {
			if !ok || cfg.failure(c) {
				tok.ExitErr(errFailed)
			} else {
				tok.Exit()
			}
		}()
		c.Next()
		ok = true
	}
}

var errFailed = errors.New("slgin: request failed")

func serverError(c *gin.Context) bool { return c.Writer.Status() >= 500 }

func tooMany(c *gin.Context, be *limiter.BlockError) {
	c.AbortWithStatus(http.StatusTooManyRequests)
	c.Writer.WriteString("too many requests (" + be.Reason.String() + ")\n")
}

// routeCache maps (method, route) to resource handles of one limiter
// without building the "METHOD route" string per request.
type routeCache struct {
	l      *limiter.Limiter
	byVerb [len(verbs)]sync.Map // route -> *limiter.Resource
	other  sync.Map             // "METHOD route" -> *limiter.Resource
}

var verbs = [...]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func (rc *routeCache) resource(method, route string) *limiter.Resource {
	if route == "" {
		route = Unmatched
		if !slices.Contains(verbs[:], method) {
			method = "_OTHER" // any method string reaches here: keep names bounded
		}
	}
	for i, v := range verbs {
		if v == method {
			if r, ok := rc.byVerb[i].Load(route); ok {
				return r.(*limiter.Resource)
			}
			r := rc.l.Resource(method + " " + route)
			rc.byVerb[i].Store(route, r)
			return r
		}
	}
	// Rare methods: a route registered for them, or "_OTHER _unmatched",
	// so this map stays as small as the route table.
	name := method + " " + route
	if r, ok := rc.other.Load(name); ok {
		return r.(*limiter.Resource)
	}
	r := rc.l.Resource(name)
	rc.other.Store(name, r)
	return r
}
