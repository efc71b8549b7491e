package slredis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/adapters/slredis"
	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

var marked = propagation.With(context.Background(), propagation.Mark{Run: "run-1"})

func uniq(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "sltest:" + hex.EncodeToString(b) + ":"
}

// realRedis returns a hooked client and a bare one on the real server, and
// deletes every key of the test's namespace (and its shadow) at the end.
func realRedis(t *testing.T, opts ...slredis.Option) (hooked, bare *redis.Client, ns string) {
	t.Helper()
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	ns = uniq(t)
	hooked = redis.NewClient(&redis.Options{Addr: addr})
	bare = redis.NewClient(&redis.Options{Addr: addr})
	hooked.AddHook(must(slredis.NewHook(opts...)))
	t.Cleanup(func() {
		ctx := context.Background()
		for _, p := range []string{ns + "*", "shadow:" + ns + "*"} {
			keys, _ := bare.Keys(ctx, p).Result()
			if len(keys) > 0 {
				bare.Del(ctx, keys...)
			}
		}
		hooked.Close()
		bare.Close()
	})
	return hooked, bare, ns
}

func mini(t *testing.T, opts ...slredis.Option) (*redis.Client, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	c.AddHook(must(slredis.NewHook(opts...)))
	t.Cleanup(func() { c.Close() })
	return c, m
}

func wantShadowErr(t *testing.T, err, sentinel error) *shadow.Error {
	t.Helper()
	var se *shadow.Error
	if !errors.Is(err, sentinel) || !errors.As(err, &se) || se.Store != "redis" || se.Rule == "" {
		t.Fatalf("err = %v, want *shadow.Error{Store: redis} wrapping %v", err, sentinel)
	}
	return se
}

func TestKeyModeRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	k := ns + "user"
	if err := rdb.Set(ctx, k, "prod", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(marked, k, "test", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v := bare.Get(ctx, k).Val(); v != "prod" {
		t.Fatalf("production key = %q after marked SET", v)
	}
	if v := bare.Get(ctx, "shadow:"+k).Val(); v != "test" {
		t.Fatalf("shadow key = %q", v)
	}
	if v := rdb.Get(marked, k).Val(); v != "test" {
		t.Fatalf("marked GET = %q", v)
	}
	// Multi-key and subcommands.
	if err := rdb.MSet(marked, ns+"a", "1", ns+"b", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if n := bare.Exists(ctx, "shadow:"+ns+"a", "shadow:"+ns+"b", ns+"a", ns+"b").Val(); n != 2 {
		t.Fatalf("exists = %d", n)
	}
	if enc := rdb.ObjectEncoding(marked, ns+"a").Val(); enc == "" {
		t.Fatal("OBJECT ENCODING on the shadow key found nothing")
	}
	// The command keeps the application's arguments.
	cmd := rdb.Get(marked, k)
	if cmd.Args()[1] != k {
		t.Fatalf("args after the call: %v", cmd.Args())
	}
	// Scripts: declared keys are renamed.
	if v := rdb.Eval(marked, "return redis.call('GET', KEYS[1])", []string{k}).Val(); v != "test" {
		t.Fatalf("EVAL = %v", v)
	}
}

func TestGuardRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	bare.Set(ctx, "shadow:"+ns+"x", "t", 0)
	bare.Set(ctx, ns+"y", "p", 0)
	err := rdb.Get(ctx, "shadow:"+ns+"x").Err()
	se := wantShadowErr(t, err, shadow.ErrShadowFromProduction)
	if se.Target != "shadow:"+ns+"x" {
		t.Errorf("target %q", se.Target)
	}
	wantShadowErr(t, rdb.Del(ctx, ns+"y", "shadow:"+ns+"x").Err(), shadow.ErrShadowFromProduction)
	if bare.Exists(ctx, ns+"y").Val() != 1 {
		t.Fatal("refused DEL deleted the production key")
	}
	// Production KEYS does not see shadow keys.
	keys := rdb.Keys(ctx, "*"+ns+"*").Val()
	if !slices.Equal(keys, []string{ns + "y"}) {
		t.Fatalf("production KEYS = %v", keys)
	}
	// Without the guard production may touch them.
	free, _, _ := realRedis(t, slredis.WithoutGuard())
	if v := free.Get(ctx, "shadow:"+ns+"x").Val(); v != "t" {
		t.Fatalf("unguarded GET = %q", v)
	}
}

func TestRefusals(t *testing.T) {
	rdb, m := mini(t)
	ctx := context.Background()
	m.Set("prod", "v")
	for _, tc := range []struct {
		cmd  redis.Cmder
		want error
	}{
		{rdb.FlushAll(marked), shadow.ErrBlocked},
		{rdb.FlushDB(marked), shadow.ErrBlocked},
		{rdb.Do(marked, "swapdb", 0, 1), shadow.ErrBlocked},
		{rdb.ConfigSet(marked, "maxmemory", "1"), shadow.ErrBlocked},
		{rdb.Do(marked, "debug", "sleep", "0"), shadow.ErrBlocked},
		{rdb.RandomKey(marked), shadow.ErrBlocked},
		{rdb.DBSize(marked), shadow.ErrBlocked},
		{rdb.Do(marked, "frobnicate", "prod"), shadow.ErrUnsupported},
		{rdb.Sort(marked, "prod", &redis.Sort{By: "w_*"}), shadow.ErrBlocked},
		{rdb.Move(marked, "prod", 1), shadow.ErrBlocked},
	} {
		se := wantShadowErr(t, tc.cmd.Err(), tc.want)
		if se.Mark.Run != "run-1" {
			t.Errorf("%v: mark %v", tc.cmd.Args(), se.Mark)
		}
	}
	if !m.Exists("prod") || len(m.Keys()) != 1 {
		t.Fatalf("a refused command changed data: %v", m.Keys())
	}
	// Unmarked traffic is not limited by the marked rules.
	if err := rdb.DBSize(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	strict, _ := mini(t, slredis.WithStrictScripts())
	wantShadowErr(t, strict.Eval(marked, "return 1", []string{"k"}).Err(), shadow.ErrBlocked)
}

// A configuration the hook cannot use is refused at construction, by
// NewHook and Instrument, so no client ever carries a hook that could let
// marked commands through.
func TestMisconfiguredFailsClosed(t *testing.T) {
	for _, opts := range [][]slredis.Option{
		{slredis.WithKeyNaming(shadow.Naming{})},
		{slredis.WithShadowClient(nil)},
		{slredis.WithMaxTTL(-time.Second)},
	} {
		h, err := slredis.NewHook(opts...)
		if h != nil {
			t.Errorf("%v: got a hook", opts)
		}
		wantShadowErr(t, err, shadow.ErrNoShadowTarget)
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		if h, err := slredis.Instrument(c, opts...); h != nil || err == nil {
			t.Errorf("%v: Instrument = %v, %v", opts, h, err)
		}
		if err := c.Set(marked, "k", "v", 0).Err(); err != nil { // no hook added: nothing shadowed
			t.Fatal(err)
		}
		c.Close()
	}
}

func TestPipelinesAndTransactionsRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	_, err := rdb.Pipelined(marked, func(p redis.Pipeliner) error {
		p.Set(marked, ns+"p1", "1", 0)
		p.Incr(marked, ns+"p2")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := rdb.TxPipelined(marked, func(p redis.Pipeliner) error {
		p.Incr(marked, ns+"p2")
		p.Get(marked, ns+"p1")
		return nil
	})
	if err != nil || cmds[1].(*redis.StringCmd).Val() != "1" || cmds[0].(*redis.IntCmd).Val() != 2 {
		t.Fatalf("tx: %v %v", cmds, err)
	}
	if bare.Exists(ctx, ns+"p1", ns+"p2").Val() != 0 || bare.Exists(ctx, "shadow:"+ns+"p1", "shadow:"+ns+"p2").Val() != 2 {
		t.Fatal("pipeline wrote outside shadow keys")
	}
	// WATCH / MULTI / EXEC.
	err = rdb.Watch(marked, func(tx *redis.Tx) error {
		n, err := tx.Get(marked, ns+"p2").Int()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(marked, func(p redis.Pipeliner) error {
			p.Set(marked, ns+"p2", n*10, 0)
			return nil
		})
		return err
	}, ns+"p2")
	if err != nil {
		t.Fatal(err)
	}
	if v := bare.Get(ctx, "shadow:"+ns+"p2").Val(); v != "20" {
		t.Fatalf("after WATCH tx: %q", v)
	}
	// One command that cannot be shadowed: nothing runs.
	cmds, err = rdb.Pipelined(marked, func(p redis.Pipeliner) error {
		p.Set(marked, ns+"p3", "x", 0)
		p.FlushDB(marked)
		return nil
	})
	wantShadowErr(t, err, shadow.ErrBlocked)
	wantShadowErr(t, cmds[0].Err(), shadow.ErrBlocked)
	if bare.Exists(ctx, "shadow:"+ns+"p3", ns+"p3").Val() != 0 {
		t.Fatal("a refused pipeline ran a command")
	}
	// Production pipeline touching a shadow key: refused as a whole.
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, ns+"p4", "x", 0)
		p.Get(ctx, "shadow:"+ns+"p1")
		return nil
	})
	wantShadowErr(t, err, shadow.ErrShadowFromProduction)
	if bare.Exists(ctx, ns+"p4").Val() != 0 {
		t.Fatal("a guarded pipeline ran a command")
	}
}

func TestKeyNameRepliesRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	bare.Set(ctx, ns+"prod", "p", 0)
	for _, k := range []string{"a", "b", "c"} {
		rdb.Set(marked, ns+k, k, 0)
	}
	want := []string{ns + "a", ns + "b", ns + "c"}
	keys := rdb.Keys(marked, ns+"*").Val()
	sort.Strings(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("marked KEYS = %v", keys)
	}
	var scanned []string
	iter := rdb.Scan(marked, 0, ns+"*", 100).Iterator()
	for iter.Next(marked) {
		scanned = append(scanned, iter.Val())
	}
	sort.Strings(scanned)
	if iter.Err() != nil || !slices.Equal(scanned, want) {
		t.Fatalf("marked SCAN = %v %v", scanned, iter.Err())
	}
	// SCAN without MATCH sees only shadow keys, under their own names.
	var all []string
	iter = rdb.Scan(marked, 0, "", 1000).Iterator()
	for iter.Next(marked) {
		if strings.HasPrefix(iter.Val(), "shadow:") || iter.Val() == ns+"prod" {
			t.Fatalf("unfiltered SCAN returned %q", iter.Val())
		}
		if strings.HasPrefix(iter.Val(), ns) {
			all = append(all, iter.Val())
		}
	}
	sort.Strings(all)
	if !slices.Equal(all, want) {
		t.Fatalf("SCAN without MATCH = %v", all)
	}
	rdb.RPush(marked, ns+"list", "x")
	if v := rdb.BLPop(marked, time.Second, ns+"none", ns+"list").Val(); !slices.Equal(v, []string{ns + "list", "x"}) {
		t.Fatalf("BLPOP = %v", v)
	}
	rdb.ZAdd(marked, ns+"z", redis.Z{Score: 1, Member: "m"})
	if v := rdb.BZPopMin(marked, time.Second, ns+"z").Val(); v == nil || v.Key != ns+"z" {
		t.Fatalf("BZPOPMIN = %v", v)
	}
	rdb.RPush(marked, ns+"list", "y")
	if k, v := rdb.BLMPop(marked, time.Second, "left", 1, ns+"list").Val(); k != ns+"list" || !slices.Equal(v, []string{"y"}) {
		t.Fatalf("BLMPOP = %v %v", k, v)
	}
	rdb.XAdd(marked, &redis.XAddArgs{Stream: ns + "s", Values: map[string]any{"f": "v"}})
	streams := rdb.XRead(marked, &redis.XReadArgs{Streams: []string{ns + "s", "0"}, Count: 1}).Val()
	if len(streams) != 1 || streams[0].Stream != ns+"s" {
		t.Fatalf("XREAD = %v", streams)
	}
	raw := rdb.Do(marked, "blpop", ns+"none", ns+"list", 0.1)
	if raw.Err() != redis.Nil {
		t.Fatalf("Do(blpop) on empty list: %v", raw.Err())
	}
	if v := rdb.PubSubNumSub(marked, ns+"ch").Val(); len(v) != 1 || v[ns+"ch"] != 0 {
		t.Fatalf("PUBSUB NUMSUB = %v", v)
	}
}

func TestPublishShadowChannelRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	h := must(slredis.NewHook())
	ch, err := h.Name(marked, ns+"news")
	if err != nil || ch != "shadow:"+ns+"news" {
		t.Fatalf("Name = %q %v", ch, err)
	}
	sub := bare.Subscribe(ctx, ch, ns+"news")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Publish(marked, ns+"news", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Channel != ch {
		t.Fatalf("marked PUBLISH went to %v (%v)", msg, err)
	}
	wantShadowErr(t, rdb.Publish(ctx, ch, "x").Err(), shadow.ErrShadowFromProduction)
	chans := rdb.PubSubChannels(marked, "*").Val()
	if !slices.Contains(chans, ns+"news") || slices.Contains(chans, ch) {
		t.Fatalf("marked PUBSUB CHANNELS = %v", chans)
	}
}

func TestMaxTTL(t *testing.T) {
	rdb, bare, ns := realRedis(t, slredis.WithMaxTTL(time.Minute))
	ctx := context.Background()
	rdb.Set(marked, ns+"a", "1", 0)
	rdb.Set(marked, ns+"b", "1", time.Hour)
	rdb.Set(marked, ns+"c", "1", time.Second*10)
	rdb.Set(ctx, ns+"p", "1", 0)
	_, err := rdb.TxPipelined(marked, func(p redis.Pipeliner) error {
		p.HSet(marked, ns+"h", "f", "v")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, max := range map[string]time.Duration{"a": time.Minute, "b": time.Minute, "c": 10 * time.Second, "h": time.Minute} {
		d := bare.PTTL(ctx, "shadow:"+ns+k).Val()
		if d <= 0 || d > max {
			t.Errorf("TTL of shadow %s = %v, want (0, %v]", k, d, max)
		}
	}
	if d := bare.PTTL(ctx, ns+"p").Val(); d != -1 {
		t.Errorf("production key got TTL %v", d)
	}
}

func TestInstanceModeRealRedis(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_REDIS_ADDR", "127.0.0.1:6379")
	testenv.Need(t, "Redis", addr)
	prod := redis.NewClient(&redis.Options{Addr: addr})
	shadowDB := slredis.ShadowDB(prod, 9)
	prod.AddHook(must(slredis.NewHook(slredis.WithShadowClient(shadowDB))))
	ns := uniq(t)
	ctx := context.Background()
	t.Cleanup(func() {
		prod.Del(ctx, ns+"k", ns+"t")
		shadowDB.Del(ctx, ns+"k", ns+"t", ns+"p")
		prod.Close()
		shadowDB.Close()
	})
	if err := prod.Set(marked, ns+"k", "test", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if prod.Exists(ctx, ns+"k").Val() != 0 || shadowDB.Get(ctx, ns+"k").Val() != "test" {
		t.Fatal("marked SET did not go to the shadow DB only")
	}
	if v := prod.Get(marked, ns+"k").Val(); v != "test" {
		t.Fatalf("marked GET = %q", v)
	}
	cmds, err := prod.TxPipelined(marked, func(p redis.Pipeliner) error {
		p.Incr(marked, ns+"t")
		p.Incr(marked, ns+"t")
		return nil
	})
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 2 {
		t.Fatalf("tx on shadow: %v %v", cmds, err)
	}
	if _, err := prod.Pipelined(marked, func(p redis.Pipeliner) error { p.Set(marked, ns+"p", "1", 0); return nil }); err != nil {
		t.Fatal(err)
	}
	if prod.Exists(ctx, ns+"t", ns+"p").Val() != 0 || shadowDB.Exists(ctx, ns+"t", ns+"p").Val() != 2 {
		t.Fatal("pipeline mixed instances")
	}
	// Keys are not renamed in pure instance mode, so there is no guard.
	if err := prod.Get(ctx, "shadow:x").Err(); err != redis.Nil {
		t.Fatalf("unmarked GET: %v", err)
	}
	err = prod.Watch(marked, func(tx *redis.Tx) error { return nil }, ns+"k")
	wantShadowErr(t, err, shadow.ErrUnsupported)
	wantShadowErr(t, prod.FlushAll(marked).Err(), shadow.ErrBlocked)
	// The whole shadow DB is shadow data: DBSIZE is allowed there.
	if err := prod.DBSize(marked).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterAndRing(t *testing.T) {
	m := miniredis.RunT(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{m.Addr()}})
	defer cc.Close()
	slredis.Instrument(cc)
	if err := cc.Set(marked, "{u1}:a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.TxPipelined(marked, func(p redis.Pipeliner) error {
		p.Set(marked, "{u1}:b", "2", 0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	keys := m.Keys()
	if !slices.Equal(keys, []string{"shadow:{u1}:a", "shadow:{u1}:b"}) {
		t.Fatalf("cluster keys = %v", keys)
	}
	m1, m2 := miniredis.RunT(t), miniredis.RunT(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"s1": m1.Addr(), "s2": m2.Addr()}})
	defer ring.Close()
	slredis.Instrument(ring)
	for i := range 20 {
		k := "k" + string(rune('a'+i))
		if err := ring.Set(marked, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := ring.Get(marked, k).Int(); err != nil || v != i {
			t.Fatalf("ring GET %s = %v %v", k, v, err)
		}
	}
	for _, k := range append(m1.Keys(), m2.Keys()...) {
		if !strings.HasPrefix(k, "shadow:") {
			t.Fatalf("ring wrote production key %q", k)
		}
	}
	if len(m1.Keys())+len(m2.Keys()) != 20 {
		t.Fatal("ring lost keys")
	}
}

// TestUnmarkedPathCostsNoAllocation: production commands pass the guard
// without allocating, reach next unchanged, and a shadow key among them is
// refused before next runs.
func TestUnmarkedPathCostsNoAllocation(t *testing.T) {
	ctx := context.Background()
	calls := 0
	next := func(context.Context, redis.Cmder) error { calls++; return nil }
	process := must(slredis.NewHook()).ProcessHook(next)
	for _, cmd := range []redis.Cmder{
		redis.NewStringCmd(ctx, "get", "user:42"),
		redis.NewStringCmd(ctx, "get", "session:42"), // shares the prefix's first byte
		redis.NewStatusCmd(ctx, "set", "user:42", "shadow:value", "px", 5),
		redis.NewSliceCmd(ctx, "mget", "a", []byte("b"), "c"),
		redis.NewIntCmd(ctx, "hset", "h", "f", 1),
	} {
		before := slices.Clone(cmd.Args())
		calls = 0
		if n := testing.AllocsPerRun(100, func() { _ = process(ctx, cmd) }); n != 0 {
			t.Errorf("%v: unmarked path allocates %v", cmd.Args(), n)
		}
		if calls != 101 || cmd.Err() != nil || !reflect.DeepEqual(before, cmd.Args()) {
			t.Errorf("%v: next ran %d times, err %v", cmd.Args(), calls, cmd.Err())
		}
	}
	calls = 0
	bad := redis.NewSliceCmd(ctx, "mget", "a", []byte("shadow:b"))
	if err := process(ctx, bad); !errors.Is(err, shadow.ErrShadowFromProduction) || calls != 0 {
		t.Fatalf("production MGET of a shadow key: err %v, next ran %d times", err, calls)
	}
}
