// Package service is the whole-service benchmark of issue 13: a gin
// handler that reads one Redis key (go-redis) and runs one SQL SELECT
// (database/sql), bare, with shadowlane on unmarked traffic, and with half
// of the requests marked. Redis is the real server on loopback
// (SHADOWLANE_REDIS_ADDR, default 127.0.0.1:6379) when it answers, else
// the benchmark skips; SQL is embedded SQLite (glebarez, pure Go), or the
// loopback PostgreSQL through pgx (BenchmarkServicePostgres). The bare
// and the shadowlane pool are opened on the same driver connector, so they
// differ only by slsql's wrapper.
//
// Two timings, both in bench/results.sh:
//
//   - BenchmarkService and BenchmarkServicePostgres run each mode in a
//     process of its own and report, besides the wall time, the
//     process's CPU time, page faults and context switches per request.
//     On a shared machine these rows move by tens of percent, in either
//     direction, from one process to the next: compare them only over
//     many alternating rounds.
//   - BenchmarkServiceAB serves the three modes from one process, one
//     request of each per iteration, on one shared driver connection (for
//     PostgreSQL: one server backend), and reports each mode's mean and
//     median wall time per request and the throughput ratios to bare.
//     Every mode meets the same load, the same server process and the same
//     heap; this is the comparison issue 13's throughput goal is read from.
//
// Instructions per request over the whole process: cgservice.sh
// (TestServiceInstructions under callgrind).
package service
