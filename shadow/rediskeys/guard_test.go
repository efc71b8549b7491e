package rediskeys

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow"
)

// guardNamings are the namings the fast guard is compared under: prefix,
// suffix, both (with glob characters), one-byte prefix and suffix that
// overlap, and none.
var guardNamings = []*Rewriter{
	{Naming: shadow.DefaultKey},
	{Naming: shadow.Naming{Suffix: "_shadow"}},
	{Naming: shadow.Naming{Prefix: "p*", Suffix: "_s"}},
	{Naming: shadow.Naming{Prefix: "s", Suffix: "s"}},
	{Dedicated: true},
}

// sameGuard fails t when the fast guard and the reference guard disagree
// on args.
func sameGuard(t *testing.T, rw *Rewriter, args []any) {
	t.Helper()
	orig := fmt.Sprintf("%q", args)
	gotR, gotErr := rw.Guard(args)
	wantR, wantErr := rw.guardRef(args)
	if gotR != wantR || (gotErr == nil) != (wantErr == nil) ||
		(gotErr != nil && (gotErr.Error() != wantErr.Error() || !errors.Is(gotErr, shadow.ErrShadowFromProduction))) {
		t.Fatalf("naming %+v, args %s: Guard = %v, %v; reference = %v, %v", rw.Naming, orig, gotR, gotErr, wantR, wantErr)
	}
	if after := fmt.Sprintf("%q", args); after != orig {
		t.Fatalf("Guard changed args: %s -> %s", orig, after)
	}
}

// guardTokens returns argument values for random argvs under naming n:
// shadow names (string and []byte), near misses, the keywords of the key
// specs, numbers for key counts, and non-string values.
func guardTokens(n shadow.Naming) []any {
	toks := []any{
		"k", "user:42", "", "0", "1", "2", "3", "-1", "*", "#", "x*", "shadow", "shadow:", "_shadow",
		"shadoW:k", "xshadow:k", "k_shadoW", "ss", "s", "p*", "p*_s", "p*k_s",
		1, 2, int64(3), 0, nil, 2.5, true, []byte("k"), []byte{},
		"MATCH", "match", "COUNT", "STREAMS", "streams", "STORE", "store", "BY", "by", "GET", "get",
		"LIMIT", "ALPHA", "DB", "KEYS", "keys", "channels", "numsub", "WEIGHTS", "AGGREGATE", "TYPE",
	}
	if n.Validate() == nil {
		for _, k := range []string{"k", "user:42", "", "a b"} {
			toks = append(toks, n.Shadow(k), []byte(n.Shadow(k)), strings.ToUpper(n.Shadow(k)))
		}
	}
	seen := map[string]bool{}
	for _, c := range commands {
		for _, e := range append([]*Command{c}, subcommandList(c)...) {
			for _, ks := range e.KeySpecs {
				if ks.Keyword != "" && !seen[ks.Keyword] {
					seen[ks.Keyword] = true
					toks = append(toks, ks.Keyword, strings.ToLower(ks.Keyword))
				}
			}
		}
	}
	return toks
}

// commandArgs returns the argv prefix naming the table entry name (such as
// "OBJECT ENCODING") in one of several spellings.
func commandArgs(name string, r *rand.Rand) []any {
	var out []any
	for _, w := range strings.Fields(name) {
		switch r.IntN(4) {
		case 0:
			out = append(out, w)
		case 1:
			out = append(out, []byte(strings.ToLower(w)))
		default:
			out = append(out, strings.ToLower(w))
		}
	}
	return out
}

// TestGuardMatchesReference: for every command and subcommand of the table,
// under several namings, the fast Guard and the reference guard give the
// same reply and the same refusal on random argvs.
func TestGuardMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	calls, refused := 0, 0
	for _, rw := range guardNamings {
		toks := guardTokens(rw.Naming)
		for _, name := range fuzzNames {
			for range 40 {
				args := commandArgs(name, r)
				for range r.IntN(9) {
					args = append(args, toks[r.IntN(len(toks))])
				}
				sameGuard(t, rw, args)
				if _, err := rw.guardRef(args); err != nil {
					refused++
				}
				calls++
			}
		}
		// Edge argvs: empty, a non-string name, a shadow name as the command.
		for _, args := range [][]any{nil, {}, {1}, {nil, "shadow:k"}, {rw.Naming.Shadow("get"), "k"}, {"get"}, {"GET", rw.Naming.Shadow("k")}} {
			sameGuard(t, rw, args)
		}
	}
	if refused < calls/20 {
		t.Fatalf("only %d of %d random argvs were refused: the sample does not exercise the guard", refused, calls)
	}
	t.Logf("%d argvs compared, %d refused", calls, refused)
}

// TestGuardRefusesShadowKeyAtEveryKeyPosition: for every command with key
// specs, an argv whose key positions (as the table computes them) hold one
// shadow name is refused by Guard, whatever else the argv holds.
func TestGuardRefusesShadowKeyAtEveryKeyPosition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, rw := range guardNamings[:4] {
		toks := guardTokens(shadow.Naming{}) // no shadow names among the other arguments
		checked := 0
		for _, name := range fuzzNames {
			for range 40 {
				args := commandArgs(name, r)
				for range 1 + r.IntN(8) {
					args = append(args, toks[r.IntN(len(toks))])
				}
				c := FindCommand(args)
				if c == nil || len(c.KeySpecs) == 0 {
					continue
				}
				ps, _ := c.KeyPositions(args, nil)
				for _, p := range ps {
					bad := append([]any(nil), args...)
					bad[p.Index] = rw.Naming.Shadow("k")
					if r.IntN(2) == 0 {
						bad[p.Index] = []byte(rw.Naming.Shadow("k"))
					}
					// The shadow name may change where keys are (a keyword
					// replaced): only positions that still are keys count.
					ps2, _ := c.KeyPositions(bad, nil)
					still := false
					for _, q := range ps2 {
						still = still || q.Index == p.Index
					}
					if !still {
						continue
					}
					if _, err := rw.Guard(bad); !errors.Is(err, shadow.ErrShadowFromProduction) {
						t.Fatalf("naming %+v: %q with a shadow key at %d passed the guard: %v", rw.Naming, bad, p.Index, err)
					}
					checked++
				}
			}
		}
		if checked < 1000 {
			t.Fatalf("only %d key positions checked", checked)
		}
	}
}

// FuzzGuardMatchesReference: for any command of the table and any
// arguments (strings, []byte, *string, encoding.BinaryMarshaler,
// integers; a *string command name), Guard agrees with the reference
// guard under every naming of guardNamings.
func FuzzGuardMatchesReference(f *testing.F) {
	f.Add(uint16(0), "k", uint8(0))
	f.Add(uint16(120), "shadow:k v", uint8(1))
	f.Add(uint16(200), "1 shadow:a v", uint8(2))
	f.Add(uint16(300), "streams s1 shadow:s2 0 0", uint8(4))
	f.Add(uint16(50), "0 match shadow:* count 10", uint8(0))
	f.Add(uint16(9), "k_shadow p*k_s", uint8(7))
	f.Add(uint16(120), "shadow:k v", uint8(0x42))
	f.Add(uint16(120), "v shadow:k", uint8(0x0c))
	f.Fuzz(func(t *testing.T, idx uint16, rest string, kinds uint8) {
		name := fuzzNames[int(idx)%len(fuzzNames)]
		var args []any
		for _, w := range strings.Fields(name) {
			args = append(args, strings.ToLower(w))
		}
		for i, w := range strings.Split(rest, " ") {
			// Two bits per argument: the types go-redis writes as text.
			switch kinds >> (2 * (i % 4)) & 3 {
			case 0:
				args = append(args, w)
			case 1:
				args = append(args, []byte(w))
			case 2:
				args = append(args, ptr(w))
			default:
				args = append(args, textKey(w))
			}
		}
		if kinds&0x80 != 0 && len(args) > 0 {
			args[len(args)-1] = int64(len(rest))
		}
		if kinds&0x40 != 0 && len(args) > 0 {
			args[0] = ptr(fmt.Sprint(args[0]))
		}
		for _, rw := range guardNamings {
			sameGuard(t, rw, args)
		}
	})
}

func TestGuardFastPathAllocs(t *testing.T) {
	for _, args := range [][]any{
		{"get", "user:42"}, {"set", "user:42", "v"}, {"set", []byte("user:42"), []byte("shadow:v")},
		{"mset", "a", "1", "b", "2"}, {"keys", "user:*"}, {"scan", 0, "match", "u*"}, {"pubsub", "channels"},
	} {
		for _, rw := range guardNamings {
			if n := testing.AllocsPerRun(50, func() { _, _ = rw.Guard(args) }); n != 0 {
				t.Errorf("naming %+v: Guard(%q) allocates %v", rw.Naming, args, n)
			}
		}
	}
}

func BenchmarkGuard(b *testing.B) {
	for _, tc := range []struct {
		name string
		args []any
	}{
		{"GET", []any{"get", "user:42"}},
		{"SET", []any{"set", "user:42", "some value"}},
		{"GET-s", []any{"get", "session:42"}},
		{"MSET", []any{"mset", "a", "1", "b", "2", "c", "3"}},
		{"SCAN", []any{"scan", 0, "match", "u*", "count", 10}},
		{"SET-shadow-value", []any{"set", "user:42", "shadow:v"}},
	} {
		b.Run(tc.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = keyMode.Guard(tc.args)
			}
		})
		b.Run(tc.name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = keyMode.guardRef(tc.args)
			}
		})
	}
}

func TestIsShadowBytesMatchesNaming(t *testing.T) {
	names := []string{"", "s", "ss", "sxs", "shadow:", "shadow:k", "shadow", "k_shadow", "_shadow", "p*_s", "p*", "p_s", "xp*k_s", "p*k_s", "shadoW:k"}
	for _, rw := range guardNamings[:4] {
		for _, s := range names {
			if got, want := isShadowBytes(rw.Naming.Prefix, rw.Naming.Suffix, []byte(s)), rw.Naming.IsShadow(s); got != want {
				t.Errorf("naming %+v, %q: isShadowBytes %v, IsShadow %v", rw.Naming, s, got, want)
			}
			if got, want := rw.isShadowArg([]byte(s)), rw.Naming.IsShadow(s); got != want {
				t.Errorf("naming %+v, %q: isShadowArg %v, IsShadow %v", rw.Naming, s, got, want)
			}
		}
	}
}
