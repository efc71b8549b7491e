// Package goredis shadows load-test Redis commands of a go-redis v9 client
// with a hook: every command run under a load-test mark
// ([propagation.Mark] with a run id in the context) goes to shadow keys or
// to a shadow instance, and nothing else does.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	rdb.AddHook(goredis.NewHook())                      // key mode, prefix "shadow:"
//	rdb.AddHook(goredis.NewHook(goredis.WithShadowClient(shadowRDB))) // instance mode
//
// The hook works on *redis.Client, *redis.ClusterClient (add it to the
// cluster client itself: slots are then computed from the shadow keys) and
// *redis.Ring, for single commands, pipelines, TxPipelined (MULTI/EXEC)
// and WATCH.
//
// Key positions come from the generated command table of
// [github.com/shadowlane/shadowlane/shadow/rediskeys]; patterns (KEYS, SCAN
// MATCH, PSUBSCRIBE) and channels (PUBLISH, PUBSUB) are renamed too, and
// replies that carry key names (KEYS, SCAN, BLPOP, BZPOPMIN, BLMPOP, XREAD,
// PUBSUB CHANNELS/NUMSUB, ...) come back with the application's names.
//
// Fail closed: a marked command the table does not know, a keyless command
// off the allow list (FLUSHALL, FLUSHDB, SWAPDB, CONFIG, DEBUG, ...), SORT
// with BY/GET patterns, or a hook without a usable shadow target returns a
// [*shadow.Error] (Store "redis") naming the command and the rule, and the
// command never reaches the server. A marked pipeline with one such command
// runs none. Production commands naming a shadow key are refused too (the
// two-way guard; [WithoutGuard] turns it off).
//
// Connection setup commands (HELLO, AUTH, SELECT, READONLY, CLIENT
// SETNAME/SETINFO/TRACKING/MAINT_NOTIFICATIONS) sent outside a pipeline of
// other commands pass unchanged: go-redis sends them through hooks while it
// opens a connection, with the context of the command that needed it.
//
// go-redis's PubSub (Subscribe, PSubscribe) bypasses hooks: subscribe to
// [Hook.Name] of the channel to follow marked traffic.
package goredis
