// Package rediskeys knows where the keys are in every Redis command and
// renames them for load-test traffic.
//
// The command table (zz_commands.go) is generated from the Redis project's
// own command metadata (internal/gen/redis-commands.json, the facts of
// src/commands/*.json: arity, flags and key specifications) by
// ./internal/gen; run `go generate` in this directory to refresh it. Key
// positions follow the server's algorithm for key specs (begin_search
// index/keyword, find_keys range/keynum), the one behind COMMAND GETKEYS, and
// the tests cross-check them against a real server.
//
// On top of the table, [Rewriter] applies the fail-closed policy of
// shadowlane to one command of marked (load-test) traffic:
//
//   - keys (and shard channels) at key-spec positions are renamed with the
//     configured [shadow.Naming];
//   - glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, PUBSUB CHANNELS) and
//     pub/sub channels (PUBLISH, SUBSCRIBE, PUBSUB NUMSUB) are renamed too;
//     SCAN without MATCH gets one, so it sees only shadow keys;
//   - HSCAN/SSCAN/ZSCAN MATCH filters fields or members, not keys, and is left
//     alone (their key is renamed);
//   - keyless commands run only when they are on a short allow list (PING,
//     MULTI/EXEC, CLIENT SETNAME, SCRIPT LOAD, COMMAND ...); everything else
//     keyless (FLUSHALL, FLUSHDB, SWAPDB, SELECT, CONFIG, DEBUG, ...) is
//     refused with [shadow.ErrBlocked]; commands the table does not know are
//     refused with [shadow.ErrUnsupported];
//   - SORT with BY/GET patterns that read other keys, MIGRATE, MOVE and
//     COPY ... DB are refused; EVAL/EVALSHA/FCALL get their declared keys
//     renamed, or are refused when StrictScripts is set.
//
// [Rewriter.Guard] is the other direction: a production command that names
// a shadow key, channel or pattern is refused with
// [shadow.ErrShadowFromProduction]. Production traffic pays only for a
// scan of the string and []byte arguments against the naming's first bytes
// (and a name compare for the few commands whose replies list names): the
// table and its key positions are consulted only when an argument may be a
// shadow name. It does not allocate for commands that pass, and it gives
// the same answer as the table-driven reference for every argv (tests and
// a fuzz target compare them command by command).
//
// Arguments are go-redis style []any, seen as go-redis writes them on the
// wire ([AppendArg] follows go-redis v9's argument writer case by case): a
// key, pattern, keyword or command name may be a string, []byte, *string,
// net.IP, encoding.BinaryMarshaler, any integer (unsigned ones stay
// unsigned), float, bool, time.Time or time.Duration, or a pointer to one;
// the rewriter renames the text the server would receive and the guard
// checks it. The guard's fast path still looks only at strings and []byte
// (and at int64, int and float64, which cannot carry a shadow name unless
// the prefix starts like a number); any other type sends the command to
// the reference guard. The marked path is linear in the number of keys:
// one pass to find them, a bit set only when two key specs could name the
// same position, and the shadow names of a multi-key command in one
// allocation.
//
// The package is client-neutral; adapters/slredis wires it into go-redis
// hooks.
package rediskeys
