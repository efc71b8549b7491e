// Package service is the whole-service benchmark of issue 13: a gin
// handler that reads one Redis key (go-redis) and runs one SQL SELECT
// (database/sql), bare, with shadowlane on unmarked traffic, and with half
// of the requests marked. Redis is the real server on loopback
// (SHADOWLANE_REDIS_ADDR, default 127.0.0.1:6379) when it answers, else
// the benchmark skips; SQL is embedded SQLite (glebarez, pure Go) so the
// figures do not depend on a database server's own noise.
//
// bench/results.sh runs it as instructions per request (callgrind) and as
// throughput alternating bare/unmarked/marked rounds.
package service
