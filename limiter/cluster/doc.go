// Package cluster enforces one rate limit across a fleet of processes on
// Redis, with the GCRA implementation of github.com/go-redis/redis_rate.
//
// A process does not make one Redis call per request: it takes tokens from
// Redis in batches (AllowN) and hands them out locally, so a fleet's
// load on Redis is about rate/batch calls per second. Tokens held locally
// expire quickly (TokenTTL) so an idle process does not hoard budget.
//
// When Redis is slow or down, the call that notices it — bounded by
// Timeout — falls back to a local limit (FallbackQPS, typically the
// cluster limit divided by the fleet size) and later calls skip Redis for
// Backoff, so requests never stall on an unreachable Redis. The timeout is
// enforced by the limiter itself, whatever the go-redis client's options
// (a client without ContextTimeoutEnabled would otherwise wait for its
// ReadTimeout, 3 s by default, on a Redis that accepts but never answers).
// Tokens a late answer grants are dropped: a stall costs under-admission,
// never over-admission.
package cluster
