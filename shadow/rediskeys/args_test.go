package rediskeys

import (
	"errors"
	"math"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/shadow"
)

// failMarshal is an encoding.BinaryMarshaler that fails.
type failMarshal struct{}

func (failMarshal) MarshalBinary() ([]byte, error) { return nil, errors.New("no") }

// nilMarshal panics on a nil receiver, as go-redis would when writing it.
type nilMarshal struct{ s string }

func (m *nilMarshal) MarshalBinary() ([]byte, error) { return []byte(m.s), nil }

// textKey is a BinaryMarshaler whose bytes are a key.
type textKey string

func (k textKey) MarshalBinary() ([]byte, error) { return []byte(k), nil }

// namedString is a string type without MarshalBinary: go-redis cannot
// send it.
type namedString string

func ptr[T any](v T) *T { return &v }

// argCases are arguments and the text go-redis v9.23's Writer.WriteArg
// sends for them (adapters/slredis checks the same table against a real
// server with ECHO).
var argCases = []struct {
	arg  any
	want string
	ok   bool
}{
	{nil, "", true},
	{"k", "k", true},
	{ptr("shadow:k"), "shadow:k", true},
	{(*string)(nil), "", true},
	{[]byte("b"), "b", true},
	{-7, "-7", true},
	{ptr(-7), "-7", true},
	{(*int)(nil), "0", true},
	{int8(-8), "-8", true},
	{int16(-16), "-16", true},
	{int32(-32), "-32", true},
	{int64(math.MinInt64), "-9223372036854775808", true},
	{ptr(int64(64)), "64", true},
	{uint(math.MaxUint64), "18446744073709551615", true},
	{uint64(1 << 63), "9223372036854775808", true},
	{ptr(uint64(math.MaxUint64)), "18446744073709551615", true},
	{(*uint64)(nil), "0", true},
	{uint8(255), "255", true},
	{uint16(65535), "65535", true},
	{uint32(math.MaxUint32), "4294967295", true},
	{uintptr(42), "42", true},
	{float32(0.1), "0.10000000149011612", true},
	{1.5, "1.5", true},
	{1e21, "1000000000000000000000", true},
	{math.Inf(-1), "-Inf", true},
	{math.NaN(), "NaN", true},
	{ptr(2.25), "2.25", true},
	{(*float64)(nil), "0", true},
	{true, "1", true},
	{false, "0", true},
	{ptr(true), "1", true},
	{(*bool)(nil), "0", true},
	{time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "2026-01-02T03:04:05.000000006Z", true},
	{(*time.Time)(nil), "0001-01-01T00:00:00Z", true},
	{90 * time.Second, "90000000000", true},
	{ptr(time.Millisecond), "1000000", true},
	{textKey("shadow:k"), "shadow:k", true},
	{net.IPv4(10, 0, 0, 1).To4(), "\x0a\x00\x00\x01", true},
	{failMarshal{}, "", false},
	{(*nilMarshal)(nil), "", false},
	{namedString("k"), "", false},
	{struct{}{}, "", false},
	{[]string{"a"}, "", false},
}

func TestAppendArg(t *testing.T) {
	for _, c := range argCases {
		got, ok := AppendArg([]byte("x"), c.arg)
		if ok != c.ok || (ok && string(got) != "x"+c.want) {
			t.Errorf("AppendArg(%T %v) = %q, %v; want %q, %v", c.arg, c.arg, got, ok, c.want, c.ok)
		}
		if s, ok := Arg(c.arg); ok != c.ok || (ok && s != c.want) {
			t.Errorf("Arg(%T) = %q, %v", c.arg, s, ok)
		}
	}
}

// TestRewriteRendersEveryArgumentType: a marked key of any type go-redis
// sends is renamed to the shadow name of the text go-redis would send (a
// uint64 >= 2^63 stays positive), and Restore gives back the original
// value; types go-redis cannot send are refused.
func TestRewriteRendersEveryArgumentType(t *testing.T) {
	for _, c := range argCases {
		args := []any{"set", c.arg, "v"}
		res, err := keyMode.Rewrite(args)
		if !c.ok {
			if !errors.Is(err, shadow.ErrUnsupported) || !reflect.DeepEqual(args[1], c.arg) && !isNaN(c.arg) {
				t.Errorf("SET %T: err %v, args %v", c.arg, err, args)
			}
			continue
		}
		if err != nil || args[1] != "shadow:"+c.want {
			t.Errorf("SET %T %v: %q, %v; want %q", c.arg, c.arg, args[1], err, "shadow:"+c.want)
			continue
		}
		res.Restore(args)
		if !reflect.DeepEqual(args[1], c.arg) && !isNaN(c.arg) {
			t.Errorf("restore %T: %v", c.arg, args[1])
		}
	}
	// Key counts of any integer type, and keywords of any text type.
	args := []any{"zunionstore", "d", uint8(2), ptr("a"), textKey("b")}
	if _, err := keyMode.Rewrite(args); err != nil || args[1] != "shadow:d" || args[3] != "shadow:a" || args[4] != "shadow:b" {
		t.Errorf("ZUNIONSTORE: %v %v", args, err)
	}
	args = []any{"xread", ptr("count"), 1, textKey("STREAMS"), ptr("s"), "0"}
	if _, err := keyMode.Rewrite(args); err != nil || args[4] != "shadow:s" {
		t.Errorf("XREAD: %v %v", args, err)
	}
}

func isNaN(a any) bool { f, ok := a.(float64); return ok && f != f }

// TestGuardSeesEveryArgumentType: a production command naming a shadow key
// as any type go-redis writes as text (*string, BinaryMarshaler, net.IP, a
// *string command name, a number under a numeric prefix) is refused; a
// key that is not a shadow name passes, under every naming.
func TestGuardSeesEveryArgumentType(t *testing.T) {
	for _, rw := range guardNamings[:4] {
		sh := rw.Naming.Shadow("k")
		bad := [][]any{
			{"get", ptr(sh)},
			{"get", textKey(sh)},
			{"get", net.IP(sh)},
			{ptr("get"), sh},
			{[]byte("get"), sh},
			{ptr("mget"), "a", ptr(sh)},
			{"xread", "count", ptr(1), textKey("streams"), ptr(sh), "0"},
			{"scan", 0, ptr("match"), ptr(sh)},
			{"keys", textKey(sh)},
			{"publish", ptr(sh), "m"},
		}
		for _, args := range bad {
			if _, err := rw.Guard(args); !errors.Is(err, shadow.ErrShadowFromProduction) {
				t.Errorf("naming %+v: %v passed the guard: %v", rw.Naming, args, err)
			}
			sameGuard(t, rw, args)
		}
		good := [][]any{
			{"get", ptr("k")}, {"get", textKey("k")}, {"get", net.IPv4(1, 2, 3, 4)}, {ptr("get"), "k"},
			{"set", "k", ptr(sh)}, {"set", "k", textKey(sh)}, {"get", nil}, {"get", failMarshal{}},
			{"get", uint64(math.MaxUint64)}, {"zadd", "z", 1.5, "m"}, {"expire", "k", 10 * time.Second},
		}
		for _, args := range good {
			if _, err := rw.Guard(args); err != nil {
				t.Errorf("naming %+v: %v refused: %v", rw.Naming, args, err)
			}
			sameGuard(t, rw, args)
		}
	}
	// A naming whose prefix or suffix a number's text can carry.
	for _, n := range []shadow.Naming{{Prefix: "9"}, {Suffix: "9"}, {Prefix: "-", Suffix: "f"}, {Prefix: "N", Suffix: "N"}} {
		rw := &Rewriter{Naming: n}
		for _, args := range [][]any{
			{"get", 95}, {"get", uint64(math.MaxUint64)}, {"get", ptr(int8(9))}, {"get", -1.5e300}, {"get", math.Inf(-1)},
			{"get", math.NaN()}, {"get", 9 * time.Nanosecond}, {"get", uint8(99)}, {"get", float32(9)},
		} {
			text, _ := Arg(args[1])
			_, err := rw.Guard(args)
			if want := n.IsShadow(text); want != (err != nil) {
				t.Errorf("naming %+v: GET %T %q: err %v, shadow %v", n, args[1], text, err, want)
			}
			sameGuard(t, rw, args)
		}
	}
}

func TestGuardPlainNumbersAllocateNothing(t *testing.T) {
	args := []any{"zadd", "z", 1.5, "m", int64(7), "n"}
	for _, rw := range guardNamings {
		if n := testing.AllocsPerRun(50, func() { _, _ = rw.Guard(args) }); n != 0 {
			t.Errorf("naming %+v: %v allocates %v", rw.Naming, args, n)
		}
	}
}

// TestRewriteAllocs: a marked single-key command costs at most two
// allocations (the shadow name and its interface value).
func TestRewriteAllocs(t *testing.T) {
	for _, args := range [][]any{{"get", "user:1"}, {"set", "user:1", "v", "px", 100}, {"hset", "h", "f", "v"}, {"incr", []byte("c")}} {
		if n := testing.AllocsPerRun(100, func() {
			res, err := keyMode.Rewrite(args)
			if err != nil {
				t.Fatal(err)
			}
			res.Restore(args)
		}); n > 2 {
			t.Errorf("%v: %v allocations", args, n)
		}
	}
}
