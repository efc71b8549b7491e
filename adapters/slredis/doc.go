// Package slredis shadows load-test Redis commands of a go-redis v9 client
// with a hook: every command run under a load-test mark
// ([propagation.Mark] with a run id in the context) goes to shadow keys or
// to a shadow instance, and nothing else does.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	h, err := slredis.Instrument(rdb, slredis.WithRuntime(rt)) // key mode, prefix "shadow:"
//	h, err := slredis.Instrument(rdb, slredis.WithShadowClient(shadowRDB)) // instance mode
//
// The hook works on *redis.Client, *redis.ClusterClient (add it to the
// cluster client itself: slots are then computed from the shadow keys) and
// *redis.Ring, for single commands, pipelines, TxPipelined (MULTI/EXEC)
// and WATCH.
//
// Key positions come from the generated command table of
// [github.com/shadowlane/shadowlane/shadow/rediskeys]; patterns (KEYS, SCAN
// MATCH, PUBSUB CHANNELS) and channels (PUBLISH, SPUBLISH, PUBSUB NUMSUB)
// are renamed too, and replies that carry key names (KEYS, SCAN, BLPOP,
// BZPOPMIN, BLMPOP, XREAD, PUBSUB CHANNELS/NUMSUB, ...) come back with the
// application's names.
//
// Fail closed: a marked command the table does not know, a keyless command
// off the allow list (FLUSHALL, FLUSHDB, SWAPDB, CONFIG, DEBUG, ...), SORT
// with BY/GET patterns, or a hook without a usable shadow target returns a
// [*shadow.Error] (Store "redis") naming the command and the rule, and the
// command never reaches the server. A marked pipeline with one such command
// runs none. Production commands naming a shadow key are refused too (the
// two-way guard; [WithoutGuard] turns it off).
//
// Arguments are seen as go-redis writes them ([rediskeys.AppendArg]
// follows go-redis's own argument writer): a key or a command name given
// as a *string, an encoding.BinaryMarshaler, a net.IP, a pointer to a
// number, a uint64 above 2^63 or a time.Time is renamed (marked) and
// guarded (production) by the text the server receives. Types go-redis
// cannot send are refused for marked commands.
//
// Production listings of the whole keyspace: in key mode shadow keys live
// beside production keys, so a production KEYS, SCAN (with or without
// MATCH, typed or through rdb.Do, alone or in a pipeline) or PUBSUB
// CHANNELS reply has every shadow name removed before the application sees
// it, and each removed name is counted ([shadow.Record], target "KEYS",
// "SCAN" or "PUBSUB CHANNELS", decision "filter"). A SCAN page may then
// come back shorter than COUNT, even empty, with a cursor that is not 0;
// loops over the cursor (and go-redis's ScanIterator) handle that. The
// server still walks the shadow keys: a pressure test with many shadow
// keys makes production KEYS and SCAN slower. Instance mode keeps shadow
// keys out of the production keyspace altogether.
//
// Scripts: a marked EVAL, EVALSHA or FCALL gets its declared keys renamed,
// but a script can build key names itself (redis.call('SET', 'orders:' ..
// ARGV[1])) and would then write production keys. [WithStrictScripts], or
// the config field redis.scripts: refuse read through [WithRuntime],
// refuses marked scripts instead; `shadowlane check` warns while they are
// allowed.
//
// Connection setup commands (HELLO, AUTH, SELECT, READONLY, CLIENT
// SETNAME/SETINFO/TRACKING/MAINT_NOTIFICATIONS) sent outside a pipeline of
// other commands pass unchanged: go-redis sends them through hooks while it
// opens a connection, with the context of the command that needed it.
//
// # Pub/sub
//
// A marked PUBLISH or SPUBLISH goes to the shadow channel ("shadow:orders").
// go-redis's PubSub (rdb.Subscribe, PSubscribe, SSubscribe and the methods
// of *redis.PubSub) does not go through hooks; subscribe with
// [Hook.Subscribe], [Hook.PSubscribe] or [Hook.SSubscribe] instead:
//
//	h, err := slredis.Instrument(rdb)
//	sub, err := h.Subscribe(ctx, rdb, []string{"orders"}, func(ctx context.Context, msg *slredis.Message) {
//		// msg.Channel == "orders"; ctx is marked for load-test messages
//	})
//	defer sub.Close()
//
// Each production channel or pattern is subscribed together with its
// shadow twin. Production messages reach the handler with an unmarked ctx,
// load-test messages with a marked one (run [bus.DefaultFallbackRun], or
// [WithFallbackRun]: pub/sub carries no headers, so the run and env of the
// publisher are unknown), msg.Channel and msg.Pattern being the
// application's names either way (msg.WireChannel is the channel Redis
// reported). The guard works on both sides: a production channel or
// pattern that is a shadow name is refused, and a production pattern that
// matches shadow channels ("*", "*orders*") never hands the handler a
// load-test message: it is dropped and counted ([shadow.Record], target
// "PSUBSCRIBE", decision guard). [WithProductionOnly] subscribes without
// the twins, for services that take no part in load tests. A subscription
// made under a load-test mark follows only the shadow channels. ctx
// cancellation or Close ends a subscription; receive errors are retried
// (go-redis reconnects) and reported to [WithReceiveErrors].
//
// In instance mode the twins are subscribed on the shadow client, where
// marked PUBLISH goes, under their shadow names when [WithKeyNaming] is set
// too and under the production names otherwise. Pub/sub channels belong to
// the server, not to a database: with a shadow database on the production
// server ([ShadowDB]) and no naming, a marked PUBLISH would reach
// production subscribers of the channel. So without WithKeyNaming a marked
// PUBLISH or SPUBLISH in instance mode is refused
// ([shadow.ErrNoShadowTarget]) unless [Instrument] saw the shadow client
// on another server; [Hook.Subscribe] likewise refuses to pair such
// channels. Set WithKeyNaming as well to publish under shadow names.
//
// Not covered: a subscription made with go-redis directly (rdb.Subscribe,
// rdb.PSubscribe, ...) stays unguarded, since go-redis gives hooks no
// access to pub/sub: a broad pattern there receives load-test messages
// published on shadow channels. SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their
// UNSUBSCRIBE forms sent as commands under a mark (rdb.Do) are refused
// with [shadow.ErrUnsupported]: they would leave a pooled connection
// subscribed. On a *redis.Ring go-redis routes each subscription to the
// shard of its first channel, so the helpers refuse shadow twins there.
// (*redis.Ring).Publish goes straight to a shard client, past the ring's
// hooks: [Instrument] also guards the ring's shard clients, so a marked
// Ring.Publish is refused ([shadow.ErrUnsupported]; publish with
// rdb.Do(ctx, "publish", channel, message), which goes through the hooks)
// and an unmarked one to a shadow channel is guarded. A hook added to a
// Ring by hand (AddHook) has no such guard: use Instrument for rings.
package slredis
