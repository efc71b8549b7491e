package slredis_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/rediskeys"
)

// binKey is an encoding.BinaryMarshaler, which go-redis writes as the
// bytes MarshalBinary returns.
type binKey string

func (k binKey) MarshalBinary() ([]byte, error) { return []byte(k), nil }

func ptr[T any](v T) *T { return &v }

// TestAppendArgMatchesGoRedis: for an argument of every type go-redis's
// writer knows, the text rediskeys renders is what the server receives
// from go-redis (ECHO returns it).
func TestAppendArgMatchesGoRedis(t *testing.T) {
	_, bare, _ := realRedis(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	args := []any{
		nil, "s", ptr("ps"), (*string)(nil), []byte("b"), net.IPv4(10, 1, 2, 3), net.ParseIP("::1"), binKey("bin"),
		-1, ptr(-2), (*int)(nil), int8(-8), ptr(int8(8)), int16(-16), int32(-32), int64(math.MinInt64), ptr(int64(math.MaxInt64)),
		uint(math.MaxUint64), ptr(uint(7)), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(1 << 63), uint64(math.MaxUint64),
		ptr(uint64(math.MaxUint64)), (*uint64)(nil), uintptr(99), ptr(uintptr(98)),
		float32(0.1), ptr(float32(-2.5)), 1.0 / 3, math.Inf(1), math.Inf(-1), math.NaN(), 1e300, ptr(5e-324), (*float64)(nil),
		true, false, ptr(true), (*bool)(nil), now, ptr(now), (*time.Time)(nil), 1500 * time.Millisecond, ptr(time.Hour),
		(*time.Duration)(nil),
	}
	for _, a := range args {
		got, err := bare.Do(ctx, "echo", a).Text()
		want, ok := rediskeys.AppendArg(nil, a)
		if err != nil || !ok || got != string(want) {
			t.Errorf("%T %v: go-redis sent %q (%v), AppendArg %q (%v)", a, a, got, err, want, ok)
		}
	}
	// What go-redis cannot send, AppendArg refuses too.
	type named string
	for _, a := range []any{named("x"), struct{}{}, []string{"a"}, map[string]int{}} {
		if err := bare.Do(ctx, "echo", a).Err(); err == nil {
			t.Errorf("go-redis sent %T", a)
		}
		if _, ok := rediskeys.AppendArg(nil, a); ok {
			t.Errorf("AppendArg accepted %T", a)
		}
	}
}

// TestGuardEveryArgumentTypeRealRedis: production commands naming a shadow
// key through a *string, a BinaryMarshaler, a net.IP or with a *string
// command name are refused and write nothing (judged by a plain client);
// the same values naming production keys go through.
func TestGuardEveryArgumentTypeRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	sh := "shadow:" + ns + "g"
	for _, args := range [][]any{
		{"set", ptr(sh), "v"},
		{"set", binKey(sh), "v"},
		{"set", net.IP(sh), "v"},
		{ptr("set"), sh, "v"},
		{[]byte("set"), sh, "v"},
		{ptr("mset"), ns + "ok", "v", ptr(sh), "v"},
		{"eval", "return redis.call('set', KEYS[1], 'v')", 1, binKey(sh)},
	} {
		err := rdb.Do(ctx, args...).Err()
		wantShadowErr(t, err, shadow.ErrShadowFromProduction)
		if n := bare.Exists(ctx, sh, ns+"ok").Val(); n != 0 {
			t.Fatalf("%v: refused command wrote %d keys", args, n)
		}
	}
	for _, args := range [][]any{
		{"set", ptr(ns + "p1"), ptr(sh)}, // a shadow name as a value is fine
		{"set", binKey(ns + "p2"), "v"},
		{ptr("set"), ns + "p3", "v"},
	} {
		if err := rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if n := bare.Exists(ctx, ns+"p1", ns+"p2", ns+"p3").Val(); n != 3 {
		t.Fatalf("production writes: %d of 3 keys", n)
	}
}

// TestMarkedKeysRenderedAsGoRedis: a marked key of any type lands on the
// shadow twin of the name go-redis would have written (a uint64 >= 2^63
// stays positive), judged by a plain client.
func TestMarkedKeysRenderedAsGoRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	big := uint64(1<<63) + rand.Uint64N(1<<62)
	t.Cleanup(func() { bare.Del(ctx, "shadow:"+strconv.FormatUint(big, 10), strconv.FormatUint(big, 10)) })
	for _, c := range []struct {
		key  any
		name string
	}{
		{big, strconv.FormatUint(big, 10)},
		{ptr(ns + "ptr"), ns + "ptr"},
		{binKey(ns + "bin"), ns + "bin"},
		{[]byte(ns + "bytes"), ns + "bytes"},
	} {
		if err := rdb.Do(marked, "set", c.key, "v").Err(); err != nil {
			t.Fatalf("%T: %v", c.key, err)
		}
		if bare.Get(ctx, "shadow:"+c.name).Val() != "v" || bare.Exists(ctx, c.name).Val() != 0 {
			t.Fatalf("%T %v: shadow:%s not written, or production written", c.key, c.key, c.name)
		}
	}
	if strings.HasPrefix(strconv.FormatUint(big, 10), "-") {
		t.Fatal("test value")
	}
}

func filtered(target string) int64 {
	for _, c := range shadow.Snapshot() {
		if c.Store == "redis" && c.Target == target && c.Decision == "filter" {
			return c.N
		}
	}
	return 0
}

// TestProductionListingsFilteredRealRedis: production KEYS and SCAN (with
// and without a pattern, typed and through Do) never list shadow keys, and
// the removed names are counted; production keys are all listed.
func TestProductionListingsFilteredRealRedis(t *testing.T) {
	rdb, bare, ns := realRedis(t)
	ctx := context.Background()
	var want []string
	for i := range 5 {
		bare.Set(ctx, ns+strconv.Itoa(i), "p", 0)
		bare.Set(ctx, "shadow:"+ns+strconv.Itoa(i), "t", 0)
		want = append(want, ns+strconv.Itoa(i))
	}
	before := filtered("KEYS")
	keys := rdb.Keys(ctx, "*"+ns+"*").Val()
	sort.Strings(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("production KEYS = %v", keys)
	}
	if got := filtered("KEYS") - before; got != 5 {
		t.Errorf("KEYS filter counted %d, want 5", got)
	}
	raw, err := rdb.Do(ctx, "keys", "*"+ns+"*").StringSlice()
	sort.Strings(raw)
	if err != nil || !slices.Equal(raw, want) {
		t.Fatalf("production Do(keys) = %v %v", raw, err)
	}
	// SCAN without a pattern, over the whole keyspace: no shadow name.
	before = filtered("SCAN")
	var seen []string
	iter := rdb.Scan(ctx, 0, "", 500).Iterator()
	for iter.Next(ctx) {
		if strings.HasPrefix(iter.Val(), "shadow:") {
			t.Fatalf("production SCAN listed %q", iter.Val())
		}
		if strings.HasPrefix(iter.Val(), ns) {
			seen = append(seen, iter.Val())
		}
	}
	sort.Strings(seen)
	if iter.Err() != nil || !slices.Equal(seen, want) {
		t.Fatalf("production SCAN = %v %v", seen, iter.Err())
	}
	if got := filtered("SCAN") - before; got < 5 {
		t.Errorf("SCAN filter counted %d, want >= 5", got)
	}
	// The same through Do, page by page.
	var cursor any = "0"
	seen = seen[:0]
	for {
		v, err := rdb.Do(ctx, "scan", cursor, "count", 500).Slice()
		if err != nil || len(v) != 2 {
			t.Fatalf("Do(scan) = %v %v", v, err)
		}
		page, _ := v[1].([]any)
		for _, k := range page {
			s := k.(string)
			if strings.HasPrefix(s, "shadow:") {
				t.Fatalf("production Do(scan) listed %q", s)
			}
			if strings.HasPrefix(s, ns) {
				seen = append(seen, s)
			}
		}
		if cursor = v[0]; cursor == "0" {
			break
		}
	}
	sort.Strings(seen)
	if !slices.Equal(seen, want) {
		t.Fatalf("production Do(scan) = %v", seen)
	}
	// A pipeline's KEYS too.
	var kc *redis.StringSliceCmd
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error { kc = p.Keys(ctx, "*"+ns+"*"); return nil })
	got := kc.Val()
	sort.Strings(got)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("pipelined KEYS = %v %v", got, err)
	}
}
