package slgrpc

import (
	"context"
	"reflect"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/grpc"
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

// outgoingKey is the context key of outgoing metadata, learned the same
// way: an unmarked client call whose context has none costs one look-up.
// nil when it cannot be learned (then every unmarked call with outgoing
// metadata is checked through a copy).
var outgoingKey = learnOutgoingKey()

func learnOutgoingKey() any {
	p := &keyProbe{Context: context.Background()}
	if metadata.ValueFromOutgoingContext(p, "shadowlane-probe") != nil || len(p.keys) != 1 {
		return nil
	}
	key := p.keys[0]
	if key == nil || !reflect.TypeOf(key).Comparable() {
		return nil
	}
	if metadata.NewOutgoingContext(context.Background(), metadata.MD{"a": {"1"}}).Value(key) == nil ||
		metadata.AppendToOutgoingContext(context.Background(), "a", "1").Value(key) == nil {
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

// Direct look-ups. grpc-go's HTTP/2 transport builds the incoming metadata
// from header fields that golang.org/x/net/http2 accepted only as
// lower-case ASCII tokens (an upper-case or non-token name is a protocol
// error before grpc-go sees it). When the map in the context is that very
// map, no key can fold to a mark carrier without being equal to its
// lower-case name, so carrier looks our keys up directly instead of
// scanning every key. Any other map (built in process, by a test or an
// interceptor: keys may be in any case) is scanned as before.

// transportType is the type of grpc-go's server transport stream, learned
// from the first call that carries it.
var transportType atomic.Value // reflect.Type

// isTransportStream reports whether st is grpc-go's HTTP/2 server stream.
func isTransportStream(st grpc.ServerTransportStream) bool {
	t := reflect.TypeOf(st)
	if known, _ := transportType.Load().(reflect.Type); known != nil {
		return t == known
	}
	if t.Kind() != reflect.Pointer || t.Elem().Name() != "ServerStream" ||
		t.Elem().PkgPath() != "google.golang.org/grpc/internal/transport" {
		return false
	}
	transportType.Store(t)
	return true
}

// fromTransport reports whether md, read from ctx under key, is the map
// grpc-go's transport built for this call.
func fromTransport(ctx context.Context, key any, md metadata.MD) bool {
	st := grpc.ServerTransportStreamFromContext(ctx)
	if st == nil || !isTransportStream(st) {
		return false
	}
	cs, ok := st.(interface{ Context() context.Context })
	if !ok {
		return false
	}
	orig, _ := cs.Context().Value(key).(metadata.MD)
	return orig != nil && reflect.ValueOf(orig).UnsafePointer() == reflect.ValueOf(md).UnsafePointer()
}

// directKeys are the lower-case carrier keys of one codec: run, env and
// token headers, then baggage, each bare and behind grpc-gateway's prefix.
type directKeys struct {
	codec   *propagation.Codec
	ok      bool // every name is ASCII: a plain key folds to it only when equal
	own     [6]string
	baggage [2]string
}

func newDirectKeys(c *propagation.Codec) *directKeys {
	n := c.LowerNames()
	d := &directKeys{codec: c, ok: true}
	for i, k := range [...]string{n.RunHeader, n.EnvHeader, n.TokenHeader} {
		d.own[i], d.own[i+3] = k, propagation.GRPCGatewayPrefix+k
		for j := 0; j < len(k); j++ {
			if k[j] >= utf8.RuneSelf {
				d.ok = false
			}
		}
	}
	d.baggage = [2]string{"baggage", propagation.GRPCGatewayPrefix + "baggage"}
	return d
}

// present is c.Present(md) for a map whose keys are all plain.
func (d *directKeys) present(md metadata.MD) bool {
	for _, k := range d.own {
		if _, ok := md[k]; ok {
			return true
		}
	}
	for _, k := range d.baggage {
		for _, line := range md[k] {
			if d.codec.BaggageMayCarry(line) {
				return d.codec.Present(md) // the exact member test
			}
		}
	}
	return false
}
