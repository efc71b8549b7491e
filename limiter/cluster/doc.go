// Package cluster enforces one rate limit across a fleet of processes on
// Redis, with GCRA (its own Lua script, keeping the state format of
// github.com/go-redis/redis_rate so both can share a key).
//
// A process does not make one Redis call per request: each handle takes a
// lease of tokens from Redis and hands them out locally. The lease is sized
// to the handle's observed rate (about TokenTTL's worth, 5 s by default,
// at most Batch tokens) and stays usable about twice as long as the handle
// needs to use it, so a slow handle asks Redis about once per lease and
// strands few tokens; a lease takes at most half the tokens Redis has left,
// so leases taken in advance leave room for the others' decisions. A
// decision makes at most one round trip: a refusal is one script call that
// also says when a token will be free, and until then the handle refuses
// without asking. Calls that find a lease request of their handle in
// flight wait for it (each request is bounded by Timeout) instead of
// asking too; no lock is held while Redis is asked.
//
// Tokens held in leases were granted by Redis, so a fleet never passes
// more than the limit grants (burst + qps x time since the key was
// fresh); over a short window it may pass up to the tokens its leases hold
// on top of that.
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
