// Package redis benchmarks the go-redis shadowing hook
// (adapters/slredis): GET/SET bare, with the hook unmarked (guard on and
// off) and marked, both without I/O (the hook around a no-op next, which
// isolates its added cost) and against a real Redis.
package redis
