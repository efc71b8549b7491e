// Package httplimit is net/http middleware for the shadowlane limiter.
//
// Each request is admitted under the resource named by a route-key function
// (by default the ServeMux pattern when set, else "METHOD /path": give
// [WithRouteKey] a route template function when paths carry ids). A refused
// request gets HTTP 429 with Retry-After and the IETF
// draft-ietf-httpapi-ratelimit-headers fields RateLimit-Policy and
// RateLimit; an admitted one is exited when the handler returns, counting a
// 5xx status or a panic as an error for breakers and metrics.
//
// [Transport] is the client side: an http.RoundTripper that admits each
// outgoing request (resource "http:METHOD host" by default) and returns
// the *limiter.BlockError without sending when refused.
//
// Hot-parameter rules resolve "header:<Name>" and "query:<name>" keys
// against the request ([RequestParams]).
package httplimit
