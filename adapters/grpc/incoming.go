package slgrpc

import (
	"context"
	"reflect"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/metadata"

	"github.com/shadowlane/shadowlane/propagation"
)

// The server interceptors decide "production or not" from the incoming
// metadata. metadata.ValueFromIncomingContext does that one key at a time,
// and each miss walks the context chain and then scans every key with
// strings.EqualFold; metadata.FromIncomingContext copies the whole map.
// Both are too slow for the unmarked hot path, so the interceptors read the
// map grpc-go attached to the context directly, without copying it, and
// answer for all the mark keys in a single pass over its keys.
//
// (A stats.Handler does not help: grpc-go v1.85 hands HandleRPC's InHeader
// a FromIncomingContext copy, and installing any stats handler costs every
// call a dozen or more allocations for the other stats events.)
//
// grpc-go keeps the map under an unexported context key. incomingKey learns
// that key once, by handing ValueFromIncomingContext a context that records
// the key it is asked for, and then checks that the key finds exactly the
// map NewIncomingContext attached. If any of that does not hold (a future
// grpc-go that stores metadata differently), incomingKey is nil and the
// interceptors use ValueFromIncomingContext as before: slower, never wrong.
var incomingKey = learnIncomingKey()

type keyProbe struct {
	context.Context
	keys []any
}

func (p *keyProbe) Value(key any) any {
	p.keys = append(p.keys, key)
	return nil
}

func learnIncomingKey() any {
	p := &keyProbe{Context: context.Background()}
	if metadata.ValueFromIncomingContext(p, "shadowlane-probe") != nil || len(p.keys) != 1 {
		return nil
	}
	key := p.keys[0]
	if key == nil || !reflect.TypeOf(key).Comparable() {
		return nil
	}
	md := metadata.MD{"shadowlane-probe": {"1"}}
	got, ok := metadata.NewIncomingContext(context.Background(), md).Value(key).(metadata.MD)
	if !ok || len(got) != 1 || len(got["shadowlane-probe"]) != 1 {
		return nil
	}
	md["shadowlane-probe-2"] = nil // the very map, not a copy
	if len(got) != 2 {
		return nil
	}
	return key
}

// mdGetter reads incoming metadata exactly as
// metadata.ValueFromIncomingContext does (the exact key, else the first key
// equal under Unicode case folding), without copying the values.
type mdGetter metadata.MD

func (m mdGetter) Get(k string) string {
	v, ok := m[k]
	if !ok {
		for mk, mv := range m {
			if strings.EqualFold(mk, k) {
				v = mv
				break
			}
		}
	}
	if len(v) > 0 {
		return v[0]
	}
	return ""
}

// plainMD is mdGetter for metadata whose keys are all plain (see plain), as
// grpc-go's transport delivers them. Two plain strings are equal under
// strings.EqualFold only when they are equal, so a look-up by a plain key
// that misses needs no scan.
type plainMD metadata.MD

func (m plainMD) Get(k string) string {
	if v, ok := m[k]; ok || plain(k) {
		if len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return mdGetter(m).Get(k)
}

// plain reports whether s is ASCII without uppercase letters: the only
// string strings.EqualFold finds equal to such a string is itself.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// plainKeys reports whether every key of md is plain.
func plainKeys(md metadata.MD) bool {
	for k := range md {
		if !plain(k) {
			return false
		}
	}
	return true
}

// markKeys is the set of metadata keys whose presence sends a call through
// the full Admit pipeline: the codec's run and env headers and "baggage".
// A key k is one of them when strings.EqualFold(k, name) holds for a name,
// as it is for ValueFromIncomingContext. lens prefilters by byte length:
// bit l is set when a key of l bytes can fold-equal a name (long covers
// 64 bytes and more), so most keys are dismissed without comparing bytes.
type markKeys struct {
	codec *propagation.Codec
	names [3]string
	lens  uint64
	long  bool
}

func newMarkKeys(c *propagation.Codec) *markKeys {
	n := c.LowerNames()
	mk := &markKeys{codec: c, names: [3]string{n.RunHeader, n.EnvHeader, "baggage"}}
	for _, name := range mk.names {
		lo, hi, ok := foldLenRange(name)
		if !ok {
			mk.lens, mk.long = ^uint64(0), true
			continue
		}
		for l := lo; l <= hi; l++ {
			if l < 64 {
				mk.lens |= 1 << l
			} else {
				mk.long = true
			}
		}
	}
	return mk
}

// foldLenRange bounds the byte length of the strings s for which
// strings.EqualFold(s, name) holds. EqualFold pairs the runes of s with
// the runes of name and accepts a pair when one is in the other's
// unicode.SimpleFold orbit, so for an ASCII name s has len(name) runes,
// each at least one byte and at most as long as the longest rune in the
// orbit of the name byte it pairs with (Kelvin sign K for 'k' is three
// bytes, long s ſ for 's' two). ok is false for a name that is not ASCII;
// callers then treat every length as possible.
func foldLenRange(name string) (lo, hi int, ok bool) {
	for i := 0; i < len(name); i++ {
		b := rune(name[i])
		if b >= utf8.RuneSelf {
			return 0, 0, false
		}
		longest := 1
		for r := unicode.SimpleFold(b); r != b; r = unicode.SimpleFold(r) {
			longest = max(longest, utf8.RuneLen(r))
		}
		lo++
		hi += longest
	}
	return lo, hi, true
}

// present reports whether md has a key that fold-equals the run or the
// env header, or one that fold-equals "baggage" whose first value may hold
// the mark's members (Codec.BaggageMayCarry).
func (mk *markKeys) present(md metadata.MD) bool {
	for k := range md {
		if l := len(k); l < 64 {
			if mk.lens&(1<<l) == 0 {
				continue
			}
		} else if !mk.long {
			continue
		}
		if strings.EqualFold(k, mk.names[0]) || strings.EqualFold(k, mk.names[1]) {
			return true
		}
		// Baggage counts only when it may hold the mark's members:
		// application baggage alone is production.
		if v := md[k]; len(v) > 0 && strings.EqualFold(k, mk.names[2]) && mk.codec.BaggageMayCarry(v[0]) {
			return true
		}
	}
	return false
}

// markKeysCache holds the markKeys of the last codec seen (a runtime's codec
// only changes when its config is applied again).
type markKeysCache struct{ p atomic.Pointer[markKeys] }

func (c *markKeysCache) get(codec *propagation.Codec) *markKeys {
	if mk := c.p.Load(); mk != nil && mk.codec == codec {
		return mk
	}
	mk := newMarkKeys(codec)
	c.p.Store(mk)
	return mk
}
