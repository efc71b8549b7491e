package slgrpc

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/shadowlane/shadowlane/propagation"
)

func TestIncomingKey(t *testing.T) {
	if incomingKey == nil {
		t.Fatal("the incoming metadata key of this grpc-go could not be learned: the server interceptors fall back to ValueFromIncomingContext look-ups")
	}
	md := metadata.MD{"a": {"1"}}
	ctx := metadata.NewIncomingContext(context.Background(), md)
	for i := 0; i < 3; i++ {
		ctx = context.WithValue(ctx, struct{ n int }{i}, i)
	}
	got, ok := ctx.Value(incomingKey).(metadata.MD)
	if !ok || len(got) != 1 || got["a"][0] != "1" {
		t.Fatalf("got %v %v", got, ok)
	}
	if v := context.Background().Value(incomingKey); v != nil {
		t.Fatalf("background: %v", v)
	}
}

// carrier decides exactly as the ValueFromIncomingContext look-ups did, and
// its getter reads the same values.
func TestCarrierMatchesLookup(t *testing.T) {
	codecs := []*propagation.Codec{
		propagation.DefaultCodec(),
		propagation.NewCodec(propagation.Names{RunHeader: "X-Kk-Run", EnvHeader: "X-Ks-Env"}),
		propagation.NewCodec(propagation.Names{RunHeader: "X-Ünïcode"}),
	}
	keys := []string{
		"x-shadowlane-run", "X-Shadowlane-Run", "X-SHADOWLANE-RUN", "x-ſhadowlane-run", "x-\u017fhadowlane-ruN",
		"x-shadowlane-rum", "x-shadowlane-runs", "x-shadowlane-ru", "x-shadowlane-env", "X-Shadowlane-Env",
		"x-ſhadowlane-env", "x-shadowlane-token", "X-Shadowlane-Token",
		"baggage", "Baggage", "BAGGAGE", "baggages", "bagage", "baggagé",
		"content-type", ":authority", "user-agent", "grpc-accept-encoding", "grpc-timeout",
		"x-kk-run", "x-\u212ak-run", "x-\u212a\u212a-run", "X-KK-RUN", "x-k\u212a-ruN", "x-ks-env", "x-\u212aſ-env", "X-KS-ENV", "x-kk-ru",
		"x-ünïcode", "X-ÜNÏCODE", "x-unicode",
		strings.Repeat("x", 70), "\xff\xfe-shadowlane-run",
	}
	values := [][]string{nil, {}, {""}, {"r1"}, {"proj-a", "r2"}, {"userId=alice"}, {"userId=alice,shadowlane.run=r1"}}
	rng := rand.New(rand.NewPCG(1, 2))
	e := &entry{key: incomingKey}
	if e.key == nil {
		t.Skip("incoming key unknown")
	}
	check := func(c *propagation.Codec, md metadata.MD, ctx context.Context) {
		t.Helper()
		g := e.carrier(ctx, c, "")
		_, production := g.(propagation.Absent)
		// Never production where the look-ups see a mark; where two keys
		// fold to "baggage" the single pass may see one the look-up
		// skipped (it then sends the call through Admit: safe).
		if lookup := presentByLookup(ctx, c); production == lookup && (lookup || !ambiguous(md)) {
			t.Fatalf("codec %v, keys %q: production=%v, look-ups disagree", c.LowerNames(), keysOf(md), production)
		}
		if production || ambiguous(md) {
			return
		}
		old := &incoming{ctx}
		n := c.LowerNames()
		for _, k := range append(keys, n.RunHeader, n.EnvHeader, n.TokenHeader) {
			if got, want := g.Get(k), old.Get(k); got != want {
				t.Fatalf("keys %q: Get(%q) = %q, look-up gives %q", keysOf(md), k, got, want)
			}
		}
	}
	for _, c := range codecs {
		check(c, nil, context.Background())
		check(c, metadata.MD{}, metadata.NewIncomingContext(context.Background(), metadata.MD{}))
		for _, k := range keys { // every key alone
			md := metadata.MD{k: {"r1"}}
			check(c, md, metadata.NewIncomingContext(context.Background(), md))
			md = metadata.MD{k: nil}
			check(c, md, metadata.NewIncomingContext(context.Background(), md))
		}
		for i := 0; i < 3000; i++ {
			md := metadata.MD{}
			for j := rng.IntN(7); j > 0; j-- {
				md[keys[rng.IntN(len(keys))]] = values[rng.IntN(len(values))]
			}
			ctx := metadata.NewIncomingContext(context.Background(), md)
			for j := rng.IntN(4); j > 0; j-- {
				ctx = context.WithValue(ctx, struct{ n int }{j}, j)
			}
			check(c, md, ctx)
		}
	}
}

// ambiguous reports whether two keys of md fold to each other: a look-up
// then depends on map order, on both paths.
func ambiguous(md metadata.MD) bool {
	for a := range md {
		for b := range md {
			if a != b && strings.EqualFold(a, b) {
				return true
			}
		}
	}
	return false
}

func keysOf(md metadata.MD) []string {
	var out []string
	for k := range md {
		out = append(out, k)
	}
	return out
}
