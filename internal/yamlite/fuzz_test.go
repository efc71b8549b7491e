package yamlite_test

import (
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane/internal/yamlite"
)

// FuzzUnmarshal checks that no input panics or hangs, that every error is a
// *yamlite.Error pointing at a line, that Parse and Unmarshal into any agree,
// and that every parsed tree survives a round trip through emit.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		realistic,
		"",
		"---\na: 1\n...\n",
		"a: [1, {b: c}, 'd''e', \"\\u00e9\\n\"]\n",
		"- id: k1\n  secret: x\n- - a\n  - b\n-\n",
		"a: |+\n  x\n\n b: >-\n  y\n  z\n",
		"a:\n- 1\n- 2.5\n- .inf\n- 0x1F\n- 0o7\n- ~\n- yes\n",
		"a: {x: [1, [2, [3]]],\n  y: z}\n",
		"a: &x 1\nb: *x\n<<: c\n? d\n!!str e: f\n",
		"a: \"unterminated\nb: [1, 2\n",
		"a:\n\tb: 1\n",
		"name: base\ntags: [a, b]\nnote: extra\nzone: z1\nlevel: high\ntimeout: 1.5s\nu8: 256\n",
		"a: |2\n   x\n  y\n",
		"\uFEFFa: 1\r\nb: 2\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var e *yamlite.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v is %T, not *yamlite.Error", what, err, err)
			}
			if e.Line < 1 || e.Msg == "" {
				t.Fatalf("%s: error without a line or message: %#v", what, e)
			}
		}
		tree, perr := yamlite.Parse(data)
		check("Parse", perr)
		var a any
		aerr := yamlite.Unmarshal(data, &a)
		check("Unmarshal(any)", aerr)
		if (perr == nil) != (aerr == nil) {
			t.Fatalf("Parse error %v but Unmarshal(any) error %v", perr, aerr)
		}
		var cfg Config
		check("Unmarshal(Config)", yamlite.Unmarshal(data, &cfg))
		var tg Targets
		check("Unmarshal(Targets)", yamlite.Unmarshal(data, &tg))
		if perr != nil {
			return
		}
		if !equal(a, tree) {
			t.Fatalf("Unmarshal(any) = %#v, Parse = %#v", a, tree)
		}
		out := emit(tree)
		again, err := yamlite.Parse([]byte(out))
		if err != nil || !equal(again, tree) {
			t.Fatalf("round trip of %#v via\n%s\ngave %#v, %v", tree, out, again, err)
		}
	})
}
