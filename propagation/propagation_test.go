package propagation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"

	"github.com/shadowlane/shadowlane/propagation"
)

func TestValidID(t *testing.T) {
	for _, s := range []string{"r1", "run-2026_11", strings.Repeat("a", 64), "A-Z_09"} {
		if !propagation.ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("a", 65), "a.b", "a b", "é", "a,b", "a=b", "a;b", "a\x00"} {
		if propagation.ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
	if err := (propagation.Mark{Run: "x y"}).Validate(); !errors.Is(err, propagation.ErrMalformed) || !strings.Contains(err.Error(), "run") {
		t.Errorf("Validate: %v", err)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if m := propagation.FromContext(ctx); !m.IsZero() {
		t.Fatalf("empty ctx has %v", m)
	}
	ctx = propagation.WithToken(ctx, propagation.Mark{Run: "r1", Env: "proj-a"}, "tok")
	if m := propagation.FromContext(ctx); m.Run != "r1" || m.Env != "proj-a" || !m.LoadTest() || m.Class() != "loadtest" {
		t.Fatalf("got %+v", m)
	}
	if propagation.TokenFromContext(ctx) != "tok" {
		t.Fatal("token lost")
	}
	cleared := propagation.With(ctx, propagation.Mark{})
	if !propagation.FromContext(cleared).IsZero() || propagation.TokenFromContext(cleared) != "" || !propagation.HasMark(cleared) {
		t.Fatal("With(zero) must hide the parent's mark")
	}
	if n := testing.AllocsPerRun(100, func() { _ = propagation.FromContext(ctx) }); n != 0 {
		t.Fatalf("FromContext allocates %v", n)
	}
}

func TestExtractHeaders(t *testing.T) {
	c := propagation.DefaultCodec()
	h := http.Header{}
	h.Set("X-Shadowlane-Run", "r1")
	h.Set("X-Shadowlane-Env", "proj-a")
	h.Set("X-Shadowlane-Token", "t")
	w := c.Extract(h)
	if w.Mark != (propagation.Mark{Run: "r1", Env: "proj-a"}) || w.Token != "t" || w.Source != propagation.SourceHeader || w.Dropped != 0 {
		t.Fatalf("got %+v", w)
	}
	// malformed values are dropped and reported, the good one kept
	h.Set("X-Shadowlane-Run", "r1;drop table")
	w = c.Extract(h)
	if w.Mark.Run != "" || w.Mark.Env != "proj-a" || w.Dropped&propagation.DropMalformedRun == 0 || w.Token != "t" || !w.LoadTest {
		t.Fatalf("malformed run: %+v", w)
	}
	h.Set("X-Shadowlane-Env", strings.Repeat("e", 65))
	w = c.Extract(h)
	h.Del("X-Shadowlane-Token")
	w = c.Extract(h)
	if !w.Mark.IsZero() || w.Source != propagation.SourceNone || w.Dropped != propagation.DropMalformedRun|propagation.DropMalformedEnv || !w.LoadTest {
		t.Fatalf("both malformed: %+v", w)
	}
	plain := http.Header{"Accept": {"x"}, "Baggage": {"userId=alice"}}
	if n := testing.AllocsPerRun(100, func() { _ = c.Extract(plain) }); n != 0 {
		t.Fatalf("unmarked extract allocates %v", n)
	}
}

func TestExtractBaggage(t *testing.T) {
	c := propagation.DefaultCodec()
	h := http.Header{}
	h.Set("Baggage", "userId=alice, shadowlane.run = r2 ;prop=1,shadowlane.env=proj-b,shadowlane.token=v1.k%2Ex")
	w := c.Extract(h)
	if w.Mark != (propagation.Mark{Run: "r2", Env: "proj-b"}) || w.Source != propagation.SourceBaggage || w.Token != "v1.k.x" {
		t.Fatalf("got %+v", w)
	}
	// own headers and baggage that disagree are a conflict, never a choice
	h.Set("X-Shadowlane-Run", "r1")
	if w := c.Extract(h); w.Mark.Run != "" || w.Dropped&propagation.DropConflict == 0 || !w.LoadTest {
		t.Fatalf("header vs baggage: %+v", w)
	}
	h.Set("X-Shadowlane-Run", "r2")
	if w := c.Extract(h); w.Mark.Run != "r2" || w.Dropped != 0 || w.Source != propagation.SourceHeader {
		t.Fatalf("header and baggage agreeing: %+v", w)
	}
	// baggage over the W3C limits is not used
	big := http.Header{}
	big.Set("Baggage", "shadowlane.run=r3,"+strings.Repeat("k=v,", 200))
	if w := c.Extract(big); !w.Mark.IsZero() || w.Dropped&propagation.DropBaggageLimit == 0 {
		t.Fatalf("too many members: %+v", w)
	}
	big.Set("Baggage", "shadowlane.run=r3,x="+strings.Repeat("v", propagation.MaxBaggageBytes))
	if w := c.Extract(big); !w.Mark.IsZero() || w.Dropped&propagation.DropBaggageLimit == 0 {
		t.Fatalf("too many bytes: %+v", w)
	}
	// lowercase carriers (gRPC metadata)
	md := otelprop.MapCarrier{"x-shadowlane-run": "r4", "baggage": "shadowlane.env=e"}
	if w := c.ExtractLower(md); w.Mark.Run != "r4" || w.Mark.Env != "e" {
		t.Fatalf("lower: %+v", w)
	}
}

func TestInjectMergesBaggage(t *testing.T) {
	c := propagation.DefaultCodec()
	h := http.Header{}
	h.Set("Baggage", "userId=alice,shadowlane.run=stale")
	c.Inject(propagation.Mark{Run: "r1", Env: "proj-a"}, "tok", h)
	if h.Get("X-Shadowlane-Run") != "r1" || h.Get("X-Shadowlane-Env") != "proj-a" || h.Get("X-Shadowlane-Token") != "tok" {
		t.Fatalf("headers: %v", h)
	}
	b, err := baggage.Parse(h.Get("Baggage"))
	if err != nil {
		t.Fatalf("merged baggage does not parse: %v (%q)", err, h.Get("Baggage"))
	}
	if b.Member("userId").Value() != "alice" || b.Member("shadowlane.run").Value() != "r1" || b.Member("shadowlane.env").Value() != "proj-a" || b.Member("shadowlane.token").Value() != "tok" {
		t.Fatalf("baggage: %q", h.Get("Baggage"))
	}
	// zero mark writes nothing
	h2 := http.Header{}
	c.Inject(propagation.Mark{}, "tok", h2)
	if len(h2) != 0 {
		t.Fatalf("zero mark wrote %v", h2)
	}
	// a baggage at the limit is left alone; the own headers still carry the mark
	full := strings.TrimSuffix(strings.Repeat("k=v,", propagation.MaxBaggageMembers), ",")
	h3 := http.Header{}
	h3.Set("Baggage", full)
	c.Inject(propagation.Mark{Run: "r1"}, "", h3)
	if h3.Get("Baggage") != full || h3.Get("X-Shadowlane-Run") != "r1" {
		t.Fatal("baggage limit not respected")
	}
	// a stale member of ours written without a value ("key;props") is
	// replaced too, as Strip removes it
	h4 := http.Header{}
	h4.Set("Baggage", "userId=alice,shadowlane.run;p")
	c.Inject(propagation.Mark{Run: "r2"}, "", h4)
	if got := h4.Get("Baggage"); got != "userId=alice,shadowlane.run=r2" {
		t.Fatalf("stale valueless member: %q", got)
	}
	// Strip removes our members and keeps the rest
	c.Strip(h)
	if h.Get("X-Shadowlane-Run") != "" || h.Get("Baggage") != "userId=alice" {
		t.Fatalf("strip: %v", h)
	}
}

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
)

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	kr, err := propagation.NewKeyring(propagation.Key{ID: "k2", Secret: secretB}, propagation.Key{ID: "k1", Secret: secretA})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: secretA})
	tok, err := kr.Sign("r1", "", now.Add(time.Hour))
	if err != nil || !strings.HasPrefix(tok, "v1.k2.r1..") {
		t.Fatalf("sign: %q %v", tok, err)
	}
	m := propagation.Mark{Run: "r1", Env: "proj-a"}
	if c, err := kr.Verify(tok, m, now); err != nil || c.Run != "r1" || c.KeyID != "k2" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	oldTok, _ := old.Sign("r1", "proj-a", now.Add(time.Hour))
	if _, err := kr.Verify(oldTok, m, now); err != nil {
		t.Fatalf("rotation: a token of the previous key must still verify: %v", err)
	}
	bound, _ := kr.Sign("r1", "proj-a", now.Add(time.Hour))
	tampered := []byte(tok)
	tampered[len(tampered)-5] ^= 1
	unknown, _ := propagation.NewKeyring(propagation.Key{ID: "k9", Secret: secretA})
	unknownTok, _ := unknown.Sign("r1", "", now.Add(time.Hour))
	forgedRun := strings.Replace(tok, ".r1.", ".r2.", 1)
	cases := []struct {
		name string
		tok  string
		m    propagation.Mark
		at   time.Time
		want error
	}{
		{"missing", "", m, now, propagation.ErrTokenMissing},
		{"garbage", "hello", m, now, propagation.ErrTokenMalformed},
		{"bad version", "v2" + tok[2:], m, now, propagation.ErrTokenMalformed},
		{"tampered mac", string(tampered), m, now, propagation.ErrTokenSignature},
		{"run swapped in token", forgedRun, propagation.Mark{Run: "r2"}, now, propagation.ErrTokenSignature},
		{"unknown key", unknownTok, m, now, propagation.ErrTokenUnknownKey},
		{"expired", tok, m, now.Add(time.Hour), propagation.ErrTokenExpired},
		{"other run", tok, propagation.Mark{Run: "r2"}, now, propagation.ErrTokenMismatch},
		{"env bound", bound, propagation.Mark{Run: "r1", Env: "proj-b"}, now, propagation.ErrTokenMismatch},
		{"env bound, none sent", bound, propagation.Mark{Run: "r1"}, now, propagation.ErrTokenMismatch},
		{"too long", tok + strings.Repeat("x", 600), m, now, propagation.ErrTokenMalformed},
	}
	for _, tc := range cases {
		if _, err := kr.Verify(tc.tok, tc.m, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// a cached valid token is still checked for expiry and mark
	if _, err := kr.Verify(tok, m, now.Add(2*time.Hour)); !errors.Is(err, propagation.ErrTokenExpired) {
		t.Errorf("cached token past expiry: %v", err)
	}
	if _, err := propagation.NewKeyring(propagation.Key{ID: "k", Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := propagation.NewKeyring(); !errors.Is(err, propagation.ErrNoKeys) {
		t.Error("empty keyring accepted")
	}
}

func TestPolicy(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	kr, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: secretA})
	tok, _ := kr.Sign("r1", "", now.Add(time.Minute))
	edge := &propagation.Policy{Trust: propagation.Edge, Keyring: kr, Now: func() time.Time { return now }}
	m, got, err := edge.Decide(propagation.Wire{Mark: propagation.Mark{Run: "r1", Env: "e"}, Token: tok})
	if err != nil || m.Run != "r1" || got != tok {
		t.Fatalf("valid: %v %v", m, err)
	}
	m, _, err = edge.Decide(propagation.Wire{Mark: propagation.Mark{Run: "r1", Env: "e"}})
	if !errors.Is(err, propagation.ErrUntrusted) || !errors.Is(err, propagation.ErrTokenMissing) || !m.IsZero() {
		t.Fatalf("forged: %v %v", m, err)
	}
	m, _, err = edge.Decide(propagation.Wire{Mark: propagation.Mark{Env: "proj-a"}})
	if err != nil || m.Env != "proj-a" {
		t.Fatalf("env-only: %v %v", m, err)
	}
	internal := &propagation.Policy{Trust: propagation.Internal}
	if m, _, err := internal.Decide(propagation.Wire{Mark: propagation.Mark{Run: "r1"}}); err != nil || m.Run != "r1" {
		t.Fatalf("internal: %v %v", m, err)
	}
	// edge with no keyring: nothing can be verified, everything is stripped
	nokeys := &propagation.Policy{Trust: propagation.Edge}
	if m, _, err := nokeys.Decide(propagation.Wire{Mark: propagation.Mark{Run: "r1"}, Token: tok}); err == nil || !m.IsZero() {
		t.Fatalf("no keys: %v %v", m, err)
	}
}

// An OpenTelemetry-only hop (TraceContext + Baggage, no shadowlane) must
// forward the mark untouched, and a composite with our propagator must keep
// the app's own baggage.
func TestPropagatorComposesWithOTel(t *testing.T) {
	ours := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{}, propagation.Propagator{})
	otelOnly := otelprop.NewCompositeTextMapPropagator(otelprop.TraceContext{}, otelprop.Baggage{})

	mem, _ := baggage.NewMember("userId", "alice")
	bag, _ := baggage.New(mem)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	ctx = propagation.WithToken(ctx, propagation.Mark{Run: "r1", Env: "proj-a"}, "tok")

	// hop 1 (shadowlane) -> wire
	h1 := http.Header{}
	ours.Inject(ctx, otelprop.HeaderCarrier(h1))
	// hop 2 (OTel only): extract, then inject into a fresh request (own headers are lost)
	ctx2 := otelOnly.Extract(context.Background(), otelprop.HeaderCarrier(h1))
	h2 := http.Header{}
	otelOnly.Inject(ctx2, otelprop.HeaderCarrier(h2))
	if h2.Get("X-Shadowlane-Run") != "" {
		t.Fatal("the OTel-only hop should not know our headers")
	}
	// hop 3 (shadowlane) reads the mark from baggage
	ctx3 := ours.Extract(context.Background(), otelprop.HeaderCarrier(h2))
	if m := propagation.FromContext(ctx3); m.Run != "r1" || m.Env != "proj-a" || propagation.TokenFromContext(ctx3) != "tok" {
		t.Fatalf("mark after OTel-only hop: %+v (baggage %q)", m, h2.Get("Baggage"))
	}
	if baggage.FromContext(ctx3).Member("userId").Value() != "alice" {
		t.Fatal("app baggage lost")
	}
	// an edge-policy propagator strips the unsigned mark
	edge := propagation.Propagator{Policy: &propagation.Policy{Trust: propagation.Edge}}
	if m := propagation.FromContext(edge.Extract(context.Background(), otelprop.HeaderCarrier(h2))); !m.IsZero() {
		t.Fatalf("edge propagator accepted %v", m)
	}
}
