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
