package slgrpc

import (
	"context"
	"reflect"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/metadata"
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

// outgoingKey is the context key of outgoing metadata, learned the same
// way: an unmarked client call whose context has none costs one look-up.
// nil when it cannot be learned (then every unmarked call with outgoing
// metadata is checked through a copy).
var outgoingKey = learnOutgoingKey()

func learnOutgoingKey() any {
	return learnKey(func(p context.Context) bool { return metadata.ValueFromOutgoingContext(p, "shadowlane-probe") != nil }, func(key any) bool {
		return metadata.NewOutgoingContext(context.Background(), metadata.MD{"a": {"1"}}).Value(key) != nil &&
			metadata.AppendToOutgoingContext(context.Background(), "a", "1").Value(key) != nil
	})
}

func learnIncomingKey() any {
	return learnKey(func(p context.Context) bool { return metadata.ValueFromIncomingContext(p, "shadowlane-probe") != nil }, func(key any) bool {
		md := metadata.MD{"shadowlane-probe": {"1"}}
		got, ok := metadata.NewIncomingContext(context.Background(), md).Value(key).(metadata.MD)
		if !ok || len(got) != 1 || len(got["shadowlane-probe"]) != 1 {
			return false
		}
		md["shadowlane-probe-2"] = nil // the very map, not a copy
		return len(got) == 2
	})
}

// learnKey learns the context key a metadata read uses: read, handed a
// context that records the keys it is asked for, must find nothing and ask
// for exactly one key, which must be comparable and pass check (it finds
// what the metadata package attached). nil when any of that does not hold.
func learnKey(read func(context.Context) bool, check func(key any) bool) any {
	p := &keyProbe{Context: context.Background()}
	if read(p) || len(p.keys) != 1 {
		return nil
	}
	key := p.keys[0]
	if key == nil || !reflect.TypeOf(key).Comparable() || !check(key) {
		return nil
	}
	return key
}

type keyProbe struct {
	context.Context
	keys []any
}

func (p *keyProbe) Value(key any) any {
	p.keys = append(p.keys, key)
	return nil
}

// mdGetter reads incoming metadata exactly as
// metadata.ValueFromIncomingContext does (the exact key, else the first key
// equal under Unicode case folding), without copying the values.
type mdGetter metadata.MD

// HeaderMap lets Admit read every key and line (propagation.HeaderMap).
func (m mdGetter) HeaderMap() map[string][]string { return m }

// HeaderMap lets Admit read every key and line (propagation.HeaderMap).
func (m plainMD) HeaderMap() map[string][]string { return m }

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
