package propagation_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// FuzzExtract: no panic; whatever is extracted is well formed; a mark
// injected and extracted again round-trips.
func FuzzExtract(f *testing.F) {
	f.Add("r1", "proj-a", "userId=alice,shadowlane.run=r2")
	f.Add("", "", "shadowlane.run=r%31;p=1 , shadowlane.env = e ")
	f.Add("a b", "é", "shadowlane.run=%zz")
	f.Add("", "", strings.Repeat("k=v,", 200))
	f.Add("", "", ",,,=,;;,shadowlane.token=v1.k.r..1.x")
	f.Fuzz(func(t *testing.T, run, env, bag string) {
		c := propagation.DefaultCodec()
		h := http.Header{}
		if run != "" {
			h["X-Shadowlane-Run"] = []string{run}
		}
		if env != "" {
			h["X-Shadowlane-Env"] = []string{env}
		}
		if bag != "" {
			h["Baggage"] = []string{bag}
		}
		w := c.Extract(h)
		if err := w.Mark.Validate(); err != nil {
			t.Fatalf("extracted invalid mark %+v: %v", w.Mark, err)
		}
		if (w.Mark.IsZero() && w.Token == "") != (w.Source == propagation.SourceNone) {
			t.Fatalf("source %v for %+v", w.Source, w.Mark)
		}
		if w.Mark.IsZero() {
			return
		}
		out := http.Header{}
		if bag != "" {
			out["Baggage"] = []string{bag}
		}
		c.Inject(w.Mark, "", out)
		if got := c.Extract(out); got.Mark != w.Mark {
			t.Fatalf("round trip %+v -> %+v", w.Mark, got.Mark)
		}
	})
}

// FuzzToken: parsing never panics, and no token verifies unless it is the
// exact token the keyring signed.
func FuzzToken(f *testing.F) {
	kr, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: secretA})
	now := time.Unix(1_800_000_000, 0)
	good, _ := kr.Sign("r1", "e1", now.Add(time.Hour))
	f.Add(good)
	f.Add("v1.k1.r1..99999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("v1....1.")
	f.Add(strings.Repeat(".", 40))
	f.Fuzz(func(t *testing.T, tok string) {
		c, _, _, err := propagation.ParseToken(tok)
		if err != nil {
			return
		}
		if _, err := kr.Verify(tok, propagation.Mark{Run: c.Run, Env: c.Env}, now); err == nil && tok != good {
			t.Fatalf("forged token verified: %q", tok)
		}
	})
}

// FuzzEdgeHeaders: a header map with the fuzzer's keys (any letter case,
// the grpc-gateway form) and repeated lines. Present, Extract and Strip
// agree; after Strip nothing carries a mark; and an edge accepts a
// load-test mark only when the request carries the one token the keyring
// signed, with the run and env it vouches for.
func FuzzEdgeHeaders(f *testing.F) {
	kr, _ := propagation.NewKeyring(propagation.Key{ID: "k1", Secret: secretA})
	now := time.Unix(1_800_000_000, 0)
	good, _ := kr.Sign("r1", "", now.Add(time.Hour))
	expired, _ := kr.Sign("r1", "", now.Add(-time.Second))
	f.Add("X-Shadowlane-Token", good, "", "", "", "")                                     // token only
	f.Add("x-shadowlane-token", good, "X-SHADOWLANE-RUN", "r1", "", "")                   // mixed case
	f.Add("X-Shadowlane-Run", "r1", "X-Shadowlane-Run", "evil", "a=1", "")                // repeated lines (same canonical key)
	f.Add("X-Shadowlane-Token", good, "", "", "a=1", "shadowlane.run=evil")               // second baggage line
	f.Add("X-Shadowlane-Token", expired, "", "", "", "")                                  // expired
	f.Add("Grpc-Metadata-X-Shadowlane-Run", "r1", "grpc-metadata-baggage", "a=1", "", "") // gateway form
	f.Add("X-Shadowlane-Run", "r1, r1", "X-Shadowlane-Token", good, "", "shadowlane.env=e1")
	f.Add("Baggage", "shadowlane.token="+good, "", "", "x=1,shadowlane.run=r1;p", "")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, bag1, bag2 string) {
		c := propagation.DefaultCodec()
		h := map[string][]string{}
		if k1 != "" {
			h[k1] = append(h[k1], v1)
		}
		if k2 != "" {
			h[k2] = append(h[k2], v2)
		}
		for _, b := range []string{bag1, bag2} {
			if b != "" {
				h["Baggage"] = append(h["Baggage"], b)
			}
		}
		w := c.ExtractHeader(h)
		if err := w.Mark.Validate(); err != nil {
			t.Fatalf("extracted invalid mark %+v: %v", w.Mark, err)
		}
		found := w.LoadTest || !w.Mark.IsZero() || w.Token != "" || w.Dropped&^propagation.DropBaggageLimit != 0
		if found && !c.Present(h) {
			t.Fatalf("Extract found %+v but Present says no: %q", w, h)
		}
		edge := &propagation.Policy{Trust: propagation.Edge, Keyring: kr, Now: func() time.Time { return now }}
		m, tok, err := edge.Decide(w)
		if err == nil && m.Run != "" {
			if tok != good || m.Run != "r1" {
				t.Fatalf("edge accepted %v with token %q from %q", m, tok, h)
			}
			if w.Mark.Run != "" && w.Mark.Run != "r1" {
				t.Fatalf("edge accepted a run header disagreeing with the token: %q", h)
			}
		}
		if err == nil && w.LoadTest && m.Run == "" {
			t.Fatalf("load-test indicator decided production without error: %+v from %q", w, h)
		}
		c.Strip(h)
		if c.Present(h) {
			t.Fatalf("after Strip, Present still says yes: %q", h)
		}
		if w2 := c.ExtractHeader(h); w2.LoadTest || !w2.Mark.IsZero() || w2.Token != "" {
			t.Fatalf("after Strip, Extract finds %+v in %q", w2, h)
		}
		for k := range h { // only baggage keys (with application members) may remain
			if probe := c.ExtractHeader(map[string][]string{k: {"r1"}}); probe.LoadTest || !probe.Mark.IsZero() {
				t.Fatalf("after Strip, own header %q remains", k)
			}
		}
	})
}
