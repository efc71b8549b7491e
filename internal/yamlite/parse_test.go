package yamlite_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/shadowlane/shadowlane/internal/yamlite"
)

type m = map[string]any
type s = []any

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     any
	}{
		// documents
		{"empty", "", nil},
		{"comments only", "# a\n   # b\n", nil},
		{"start marker only", "---\n", nil},
		{"start and end markers", "--- # doc\na: 1\n...\n# trailing\n", m{"a": int64(1)}},
		{"root scalar", "hello world", "hello world"},
		{"root null", "~", nil},
		{"crlf and bom", "\uFEFFa: 1\r\nb:\r\n  - x\r\n", m{"a": int64(1), "b": s{"x"}}},

		// core schema resolution of plain scalars
		{"nulls", "a:\nb: ~\nc: null\nd: NULL\ne: Null", m{"a": nil, "b": nil, "c": nil, "d": nil, "e": nil}},
		{"bools", "a: true\nb: false\nc: True\nd: FALSE", m{"a": true, "b": false, "c": true, "d": false}},
		{"yaml 1.1 bools stay strings", "a: yes\nb: no\nc: on\nd: off\ne: y", m{"a": "yes", "b": "no", "c": "on", "d": "off", "e": "y"}},
		{"ints", "a: 42\nb: -7\nc: +3\nd: 0x1F\ne: 0o17\nf: 0755\ng: 9223372036854775807",
			m{"a": int64(42), "b": int64(-7), "c": int64(3), "d": int64(31), "e": int64(15), "f": int64(755), "g": int64(math.MaxInt64)}},
		{"floats", "a: 1.5\nb: .5\nc: -2.\nd: 1e3\ne: 6.02E+23\nf: .inf\ng: -.Inf",
			m{"a": 1.5, "b": 0.5, "c": -2.0, "d": 1000.0, "e": 6.02e23, "f": math.Inf(1), "g": math.Inf(-1)}},
		{"strings that look like other things", "a: 127.0.0.1\nb: orders:8080\nc: 1_000\nd: 0b101\ne: a#b\nf: http://x/y?q=1\ng: 1.2.3\ni: 0x",
			m{"a": "127.0.0.1", "b": "orders:8080", "c": "1_000", "d": "0b101", "e": "a#b", "f": "http://x/y?q=1", "g": "1.2.3", "i": "0x"}},
		{"comments", "# head\na: 1 # one\n  # indented comment\nb: x#y # two\n", m{"a": int64(1), "b": "x#y"}},
		{"empty value before comment", "a: # nothing\nb: 2", m{"a": nil, "b": int64(2)}},

		// quoted scalars
		{"single quoted", `a: 'it''s # not a comment: ok'`, m{"a": "it's # not a comment: ok"}},
		{"double quoted escapes", `a: "tab\there \"q\" back\\slash\nnl \u00e9 \x41 \U0001F600 \uD83D\uDE00 \/ \e \0"`,
			m{"a": "tab\there \"q\" back\\slash\nnl é A 😀 😀 / \x1b \x00"}},
		{"quoted keeps type", `a: "1"` + "\nb: 'true'\nc: \"\"\nd: ''", m{"a": "1", "b": "true", "c": "", "d": ""}},
		{"quoted keys", `"a b": 1` + "\n'c:d': 2\n\"\": 3", m{"a b": int64(1), "c:d": int64(2), "": int64(3)}},
		{"plain key with spaces", "key with spaces : v", m{"key with spaces": "v"}},

		// block collections
		{"nested mappings", "a:\n  b:\n    c: 1\n  d: 2\ne: 3", m{"a": m{"b": m{"c": int64(1)}, "d": int64(2)}, "e": int64(3)}},
		{"sequence of scalars", "- a\n- 'b'\n-\n- 3", s{"a", "b", nil, int64(3)}},
		{"sequence at key indentation", "a:\n- 1\n- 2\nb: x", m{"a": s{int64(1), int64(2)}, "b": "x"}},
		{"indented sequence", "a:\n    - 1\n    - 2\nb: x", m{"a": s{int64(1), int64(2)}, "b": "x"}},
		{"compact mapping items", "- id: k1\n  secret: x\n-   id: k2\n    secret: y\n", s{m{"id": "k1", "secret": "x"}, m{"id": "k2", "secret": "y"}}},
		{"compact nested sequences", "- - a\n  - b\n- - c", s{s{"a", "b"}, s{"c"}}},
		{"item holding a block mapping", "-\n  a: 1\n  b: 2", s{m{"a": int64(1), "b": int64(2)}}},
		{"mapping item with nested list", "- name: x\n  tags:\n  - p\n  - q\n- name: y", s{m{"name": "x", "tags": s{"p", "q"}}, m{"name": "y"}}},
		{"blank lines between entries", "a: 1\n\n\nb: 2\n", m{"a": int64(1), "b": int64(2)}},

		// flow collections
		{"flow sequence", `a: [ "*.internal", 127.0.0.1, "orders:8080", 'x', 3, ~ ]`, m{"a": s{"*.internal", "127.0.0.1", "orders:8080", "x", int64(3), nil}}},
		{"flow mapping", "a: {Content-Type: application/json, n: 1, \"q\": 'v', bare, e: }",
			m{"a": m{"Content-Type": "application/json", "n": int64(1), "q": "v", "bare": nil, "e": nil}}},
		{"json style", `{"a":1,"b":[true,null,"x"]}`, m{"a": int64(1), "b": s{true, nil, "x"}}},
		{"nested flow", "a: [[1, 2], {b: [c, {d: e}]}, []]\nf: {}", m{"a": s{s{int64(1), int64(2)}, m{"b": s{"c", m{"d": "e"}}}, s{}}, "f": m{}}},
		{"flow across lines", "a: [\n  x, # first\n  y,\n]\nb: {k: v,\n    l: w}", m{"a": s{"x", "y"}, "b": m{"k": "v", "l": "w"}}},
		{"flow in sequence item", "- {id: k0, secret: s}\n- [1]", s{m{"id": "k0", "secret": "s"}, s{int64(1)}}},

		// block scalars
		{"literal", "a: |\n  line 1\n    indented\n  # not a comment\n\nb: x", m{"a": "line 1\n  indented\n# not a comment\n", "b": "x"}},
		{"literal strip", "a: |-\n  x\n  y\n\n", m{"a": "x\ny"}},
		{"literal keep", "a: |+\n  x\n\n\nb: 1", m{"a": "x\n\n\n", "b": int64(1)}},
		{"folded keep at end of file", "a: >+\n  x\n\n", m{"a": "x\n\n"}},
		{"literal indent indicator", "a: |2\n    four\n  two\n", m{"a": "  four\ntwo\n"}},
		{"literal leading blank line", "a: |\n\n  x\n", m{"a": "\nx\n"}},
		{"literal ends at dedent comment", "a:\n  b: |\n    x\n  # comment\n  c: 1", m{"a": m{"b": "x\n", "c": int64(1)}}},
		{"empty literal", "a: |\nb: 1", m{"a": "", "b": int64(1)}},
		{"folded", "a: >\n  one\n  two\n\n  three\n    more\n  four\n", m{"a": "one two\nthree\n  more\nfour\n"}},
		{"folded strip with comment", "a: >- # c\n  x\n  y\n", m{"a": "x y"}},
		{"block scalar in sequence", "- |\n  a\n  b\n- c", s{"a\nb\n", "c"}},
		{"block scalar in compact mapping", "- body: |\n    {\"ok\": true}\n  status: 200", s{m{"body": "{\"ok\": true}\n", "status": int64(200)}}},
		{"tabs inside block scalar content", "a: |\n  x\ty\n  \tz\n", m{"a": "x\ty\n\tz\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := yamlite.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q)\n got  %#v\n want %#v", tt.in, got, tt.want)
			}
			// The same tree must survive a round trip through our emitter.
			again, err := yamlite.Parse([]byte(emit(got)))
			if err != nil || !equal(again, got) {
				t.Fatalf("round trip of %#v via\n%s\ngave %#v, %v", got, emit(got), again, err)
			}
		})
	}
}

func TestParseNaN(t *testing.T) {
	got, err := yamlite.Parse([]byte("a: .nan"))
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := got.(map[string]any)["a"].(float64); !ok || !math.IsNaN(f) {
		t.Fatalf("got %#v, want NaN", got)
	}
}
