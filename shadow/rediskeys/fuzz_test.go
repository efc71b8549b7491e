package rediskeys

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow"
)

var fuzzNames = func() []string {
	var out []string
	for _, c := range commands {
		out = append(out, c.Name)
		for _, s := range c.Subcommands {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}()

// FuzzRewrite: for any command of the table and any arguments, Rewrite and
// Guard never panic; when Rewrite accepts, every key position of the
// command holds the shadow name of the original argument, and Restore
// gives the original argv back.
func FuzzRewrite(f *testing.F) {
	f.Add(uint16(0), "k")
	f.Add(uint16(100), "a b c")
	f.Add(uint16(200), "1 k v")
	f.Add(uint16(300), "streams s1 s2 0 0")
	f.Add(uint16(7), "2 a b weights 1 2")
	f.Add(uint16(50), "match x* count 10")
	f.Fuzz(func(t *testing.T, idx uint16, rest string) {
		name := fuzzNames[int(idx)%len(fuzzNames)]
		var args []any
		for _, w := range strings.Fields(name) {
			args = append(args, strings.ToLower(w))
		}
		for _, w := range strings.Split(rest, " ") {
			args = append(args, w)
		}
		orig := append([]any(nil), args...)
		for _, rw := range []*Rewriter{
			{Naming: shadow.DefaultKey},
			{Naming: shadow.Naming{Prefix: "p*", Suffix: "_s"}},
			{Dedicated: true},
		} {
			_, _ = rw.Guard(args)
			res, err := rw.Rewrite(args)
			if err != nil {
				if !reflect.DeepEqual(args, orig) {
					t.Fatalf("refusal changed args: %v -> %v", orig, args)
				}
				continue
			}
			c := FindCommand(orig)
			if c == nil {
				t.Fatalf("accepted unknown command %v", orig)
			}
			if c.Name != "SORT" && c.Name != "SORT_RO" {
				ps, perr := c.KeyPositions(orig, nil)
				if perr != nil && len(c.KeySpecs) > 0 {
					t.Fatalf("accepted %v whose keys cannot be found: %v", orig, perr)
				}
				for _, p := range ps {
					want := orig[p.Index]
					if rw.Renames() {
						want = rw.Naming.Shadow(orig[p.Index].(string))
					}
					if args[p.Index] != want {
						t.Fatalf("%v: key at %d is %v, want %v", orig, p.Index, args[p.Index], want)
					}
				}
			}
			res.Restore(args)
			if !reflect.DeepEqual(args, orig) {
				t.Fatalf("restore: %v, want %v", args, orig)
			}
		}
	})
}
