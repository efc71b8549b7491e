package yamlite_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/internal/yamlite"
)

// The realistic config from the design, and the types it decodes into.
const realistic = `# shadowlane config
service: orders
env: ""
trust:
  mode: edge          # edge | internal
  onUntrusted: strip
  keys:
    - id: k1
      secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
    - {id: k0, secret: old-secret-old-secret-old-secret-xx}
loadTest:
  enabled: true
  reason: ''
outbound:
  allow: [ "*.internal", 127.0.0.1, "orders:8080" ]
  mocks:
    - host: pay.example.com
      path: /v1/charge
      status: 200
      headers: {Content-Type: application/json}
      body: |
        {"ok": true}
admin:
  addr: 127.0.0.1:9464
reload: 2s
`

type Key struct {
	ID     string `yaml:"id"`
	Secret string `json:"secret,omitempty"`
}

type Mock struct {
	Host    string
	Path    string
	Status  int
	Headers map[string]string
	Body    string
}

type Config struct {
	Service string
	Env     string `yaml:"env,omitempty"`
	Trust   struct {
		Mode        string
		OnUntrusted string
		Keys        []Key
	}
	LoadTest *struct {
		Enabled bool
		Reason  string
	}
	Outbound struct {
		Allow []string
		Mocks []Mock
	}
	Admin struct {
		Addr netip.AddrPort
	}
	Reload   time.Duration
	Internal string `yaml:"-"`
}

func TestRealisticConfig(t *testing.T) {
	var got Config
	if err := yamlite.Unmarshal([]byte(realistic), &got); err != nil {
		t.Fatal(err)
	}
	var want Config
	want.Service = "orders"
	want.Trust.Mode = "edge"
	want.Trust.OnUntrusted = "strip"
	want.Trust.Keys = []Key{
		{ID: "k1", Secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="},
		{ID: "k0", Secret: "old-secret-old-secret-old-secret-xx"},
	}
	want.LoadTest = &struct {
		Enabled bool
		Reason  string
	}{Enabled: true}
	want.Outbound.Allow = []string{"*.internal", "127.0.0.1", "orders:8080"}
	want.Outbound.Mocks = []Mock{{
		Host: "pay.example.com", Path: "/v1/charge", Status: 200,
		Headers: map[string]string{"Content-Type": "application/json"},
		Body:    "{\"ok\": true}\n",
	}}
	want.Admin.Addr = netip.MustParseAddrPort("127.0.0.1:9464")
	want.Reload = 2 * time.Second
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// Round trip: the generic tree re-emitted as YAML decodes to the same
	// tree and to the same struct.
	tree, err := yamlite.Parse([]byte(realistic))
	if err != nil {
		t.Fatal(err)
	}
	out := emit(tree)
	tree2, err := yamlite.Parse([]byte(out))
	if err != nil || !equal(tree, tree2) {
		t.Fatalf("round trip via\n%s\ngave %#v, %v; want %#v", out, tree2, err, tree)
	}
	var again Config
	if err := yamlite.Unmarshal([]byte(out), &again); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("re-emitted config decoded to %+v, %v", again, err)
	}
	if s := tree.(map[string]any)["outbound"].(map[string]any)["mocks"].([]any)[0].(map[string]any)["status"]; s != int64(200) {
		t.Fatalf("status resolved to %#v, want int64(200)", s)
	}
}

type Base struct {
	Name string
	Tags []string
}

type Extra struct{ Note string }

type level string

func (l *level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low", "high":
		*l = level(b)
		return nil
	}
	return errors.New("want low or high")
}

type Targets struct {
	Base                           // promoted
	*Extra                         // promoted, allocated on demand
	Inline   struct{ Zone string } `yaml:",inline"`
	Named    Base                  `json:"named"`
	Ptr      *int
	Any      any
	Generic  map[string]any
	Labels   map[string]string
	U8       uint8
	I16      int16
	F32      float32
	F64      float64
	Pair     [2]string
	Level    level
	LevelPtr *level
	Timeout  time.Duration
	Zero     time.Duration
	Keep     string
	Nilled   *int
	URLPath  string
	ID       int
	skipped  string // unexported: never set
}

func TestUnmarshalTargets(t *testing.T) {
	in := `
name: base
tags: [a, b]
note: extra
zone: z1
named: {name: n, tags: []}
ptr: 7
any: [1, {x: y}]
generic: {a: 1, b: [true]}
labels:
  team: core
  "a.b": dotted
u8: 255
i16: -32768
f32: 1.5
f64: 3
pair: [x]
level: high
levelPtr: low
timeout: 1.5s
zero: 0
keep:
nilled: ~
urlPath: /x
id: 9
`
	ptr := 1
	got := Targets{Keep: "default", Nilled: &ptr}
	if err := yamlite.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	seven, low := 7, level("low")
	want := Targets{
		Base:    Base{Name: "base", Tags: []string{"a", "b"}},
		Extra:   &Extra{Note: "extra"},
		Named:   Base{Name: "n", Tags: []string{}},
		Ptr:     &seven,
		Any:     []any{int64(1), map[string]any{"x": "y"}},
		Generic: map[string]any{"a": int64(1), "b": []any{true}},
		Labels:  map[string]string{"team": "core", "a.b": "dotted"},
		U8:      255, I16: -32768, F32: 1.5, F64: 3,
		Pair:  [2]string{"x", ""},
		Level: "high", LevelPtr: &low,
		Timeout: 1500 * time.Millisecond,
		Keep:    "default", // null leaves a scalar unchanged
		URLPath: "/x", ID: 9,
	}
	want.Inline.Zone = "z1"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// Roots other than structs.
	var list []string
	if err := yamlite.Unmarshal([]byte("- a\n- 'b'\n"), &list); err != nil || !reflect.DeepEqual(list, []string{"a", "b"}) {
		t.Fatalf("list: %v, %v", list, err)
	}
	var anyRoot any = "old"
	if err := yamlite.Unmarshal([]byte(""), &anyRoot); err != nil || anyRoot != nil {
		t.Fatalf("empty document into any: %#v, %v", anyRoot, err)
	}
	var mp map[string]int
	if err := yamlite.Unmarshal([]byte("a: 1\nb: 0x10"), &mp); err != nil || !reflect.DeepEqual(mp, map[string]int{"a": 1, "b": 16}) {
		t.Fatalf("map: %v, %v", mp, err)
	}
}

type errCfg struct {
	Name    string
	Enabled bool
	Port    int
	Small   int8
	Count   uint
	Ratio   float64
	Reload  time.Duration
	Tags    []string
	Sub     struct{ Mode string }
	Level   level
	Headers map[string]string
	Pair    [1]int
	Trust   struct {
		Keys []struct {
			ID     string
			Secret string
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		path     string
		msg      string // substring of Error()
	}{
		// the example from the design: a mapping where a string belongs
		{"string got mapping", "name: x\n\n\n\n\n\n\ntrust:\n  keys:\n    - id: k1\n    - id: k2\n      secret: {nested: map}\n",
			12, "trust.keys[1].secret", "config line 12, trust.keys[1].secret: expected a string, got a mapping"},
		{"unknown key", "sub:\n  mode: a\n  mdoe: b\n", 3, "sub.mdoe", `unknown key "mdoe" (valid keys: mode)`},
		{"unknown nested flow key", "trust: {keys: [{id: a, secert: b}]}", 1, "trust.keys[0].secert", `unknown key "secert"`},
		{"duplicate key", "name: a\nport: 1\nname: b\n", 3, "name", `duplicate key "name" (first set on line 1)`},
		{"duplicate flow key", "sub: {mode: a, mode: b}", 1, "sub.mode", "duplicate key"},
		{"yes is not a bool", "enabled: yes", 1, "enabled", "YAML 1.2 booleans are only true and false"},
		{"quoted bool", `enabled: "true"`, 1, "enabled", "remove the quotes"},
		{"bool got int", "enabled: 1", 1, "enabled", "expected a boolean (true or false), got the integer 1"},
		{"int got string", "port: eighty", 1, "port", `expected an integer, got the string "eighty"`},
		{"int got quoted", `port: "80"`, 1, "port", `expected an integer, got the string "80"`},
		{"int got float", "port: 80.5", 1, "port", "expected an integer, got the number 80.5"},
		{"int8 overflow", "small: 128", 1, "small", "integer 128 out of range for int8"},
		{"int64 overflow", "port: 99999999999999999999", 1, "port", "out of range"},
		{"uint negative", "count: -1", 1, "count", "out of range for uint"},
		{"float got string", "ratio: half", 1, "ratio", "expected a number"},
		{"duration without unit", "reload: 5", 1, "reload", "(a duration needs a unit)"},
		{"duration bad", "reload: soon", 1, "reload", `expected a duration like "1.5s"`},
		{"duration got list", "reload: [1s]", 1, "reload", "got a sequence"},
		{"slice got scalar", "tags: a", 1, "tags", `expected a sequence, got the string "a"`},
		{"struct got sequence", "sub:\n  - a", 2, "sub", "expected a mapping, got a sequence"},
		{"map got scalar", "headers: x", 1, "headers", "expected a mapping"},
		{"map value got list", "headers: {a: [b]}", 1, "headers.a", "expected a string, got a sequence"},
		{"odd key path", "headers: {\"x.y\": [b]}", 1, `headers["x.y"]`, "expected a string"},
		{"array too long", "pair: [1, 2]", 1, "pair", "at most 1 items"},
		{"text unmarshaler", "level: medium", 1, "level", `invalid value "medium": want low or high`},
		{"root not a mapping", "- a", 1, "", "expected a mapping, got a sequence"},

		// rejected constructs
		{"anchor", "name: &n x", 1, "", "anchors (&name) are not supported"},
		{"alias", "name: x\nsub: *n", 2, "", "aliases (*name) are not supported"},
		{"alias in flow", "tags: [*.internal]", 1, "", "aliases"},
		{"anchor on key", "&a name: x", 1, "", "anchors"},
		{"merge key", "sub:\n  <<: {mode: x}", 2, "", "merge keys (<<) are not supported"},
		{"merge key in flow", "sub: {<<: x}", 1, "", "merge keys"},
		{"tag", "name: !!str 1", 1, "", "tags (!tag, !!type) are not supported"},
		{"local tag", "sub: !thing\n  mode: x", 1, "", "tags"},
		{"two documents", "name: a\n---\nname: b", 2, "", "multiple documents are not supported"},
		{"two start markers", "---\n---\nname: b", 2, "", "multiple documents"},
		{"document after end", "name: a\n...\n---\nname: b", 3, "", "multiple documents"},
		{"content after end", "name: a\n...\nname: b", 3, "", `content after the document end marker "..."`},
		{"content on start line", "--- name: a", 1, "", `content on the "---" line`},
		{"complex key", "? name\n: x", 1, "", `complex keys ("? ") are not supported`},
		{"flow complex key", "[a]: b", 1, "", "complex keys"},
		{"flow complex key in flow map", "sub: {[a]: b}", 1, "", "complex keys"},
		{"directive", "%YAML 1.2\n---\nname: a", 1, "", "directives"},
		{"tab indentation", "sub:\n\tmode: x", 2, "", "tab character used for indentation"},
		{"tab after spaces", "sub:\n  \tmode: x", 2, "", "tab character"},
		{"tab after dash", "tags:\n-\ta", 2, "", "tab character"},

		// syntax errors
		{"plain with colon space", "name: a: b", 1, "", `a plain value cannot contain ": "`},
		{"sequence on key line", "tags: - a", 1, "", "block sequence cannot start on the line of its key"},
		{"dash alone as value", "name: -", 1, "", "block sequence cannot start"},
		{"bad indentation", "sub:\n  mode: a\n    extra: b", 3, "", "bad indentation"},
		{"multi-line plain", "name: a\n  b", 2, "", "bad indentation"},
		{"sequence bad indentation", "tags:\n  - a\n   - b", 3, "", `bad indentation: expected "- "`},
		{"dedent leftover", "  name: a\nport: 1", 2, "", "unexpected content"},
		{"not a key", "name: a\njunk", 2, "", `expected a "key: value" mapping entry`},
		{"missing space after colon", "name: a\nport:80", 2, "", "a key's colon must be followed by a space"},
		{"indicator start", "name: ]x", 1, "", `a plain value cannot start with ']'`},
		{"item in mapping", "name: a\n- b", 2, "", "found a sequence item"},
		{"unterminated double quote", "name: \"abc", 1, "", "unterminated quoted string"},
		{"unterminated single quote", "name: 'abc''", 1, "", "unterminated quoted string"},
		{"multi-line quoted", "name: \"abc\n  def\"", 1, "", "unterminated quoted string"},
		{"content after quote", `name: "a" b`, 1, "", "unexpected content after the quoted string"},
		{"comment glued to quote", `name: "a"#b`, 1, "", "unexpected content after the quoted string"},
		{"bad escape", `name: "a\qb"`, 1, "", `unknown escape \q`},
		{"short unicode escape", `name: "\u12"`, 1, "", `invalid \u escape`},
		{"lone surrogate", `name: "\uD800x"`, 1, "", "unpaired UTF-16 surrogate"},
		{"escaped line break", "name: \"a\\", 1, "", "escaped line breaks"},
		{"unterminated flow", "tags: [a, b\n\n", 1, "", `unterminated flow sequence: missing ']'`},
		{"unclosed flow then key", "tags: [a, b\n\nname: c", 3, "", `expected ',' or ']' in the flow sequence started on line 1`},
		{"block value of a key spans lines", "trust:\n  keys:\n    - id: k2\n      secret:\n        nested: map\n", 5, "trust.keys[0].secret", "expected a string, got a mapping"},
		{"unterminated flow map", "sub: {mode: a", 1, "", `unterminated flow mapping: missing '}'`},
		{"flow missing comma", "tags: [a b, c d e: f]", 1, "", `"key: value" pairs inside a flow sequence`},
		{"flow empty entry", "tags: [a, , b]", 1, "", `unexpected ','`},
		{"flow trailing junk", "tags: [a] b", 1, "", "unexpected content after the flow collection"},
		{"flow pair in sequence", "tags: [a: b]", 1, "", `"key: value" pairs inside a flow sequence`},
		{"flow block scalar", "tags: [|]", 1, "", "block scalars (| or >) are not allowed inside a flow collection"},
		{"flow dash", "tags: [- a]", 1, "", "block sequence items"},
		{"flow close mismatch", "tags: [a}", 1, "", `expected ',' or ']'`},
		{"block scalar header", "name: |x\n  a", 1, "", "invalid block scalar header"},
		{"empty key", ": x", 1, "", "empty mapping key"},
		{"reserved indicator", "name: @x", 1, "", "reserved"},
		{"too deep", "tags: " + strings.Repeat("[", 200) + strings.Repeat("]", 200), 1, "", "nesting deeper than 100 levels"},
		{"too deep block", strings.Repeat("- ", 150) + "x", 1, "", "nesting deeper"},
		{"invalid utf8", "name: a\nport: \xff", 2, "", "config line 2, column 7: input is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg errCfg
			err := yamlite.Unmarshal([]byte(tt.in), &cfg)
			var e *yamlite.Error
			if !errors.As(err, &e) {
				t.Fatalf("Unmarshal(%q) = %v (%T), want *yamlite.Error", tt.in, err, err)
			}
			if e.Line != tt.line || e.Path != tt.path || !strings.Contains(e.Error(), tt.msg) {
				t.Fatalf("Unmarshal(%q)\n got  line %d path %q: %s\n want line %d path %q containing %q", tt.in, e.Line, e.Path, e, tt.line, tt.path, tt.msg)
			}
			wantPrefix := "config line " + strconv.Itoa(tt.line)
			if tt.path != "" {
				wantPrefix += ", " + tt.path + ": "
			}
			if !strings.HasPrefix(e.Error(), wantPrefix) {
				t.Fatalf("message %q does not start with %q", e, wantPrefix)
			}
			if e.Col < 1 {
				t.Fatalf("error without a column: %#v", e)
			}
		})
	}
}

func TestErrorDetails(t *testing.T) {
	var cfg errCfg
	err := yamlite.Unmarshal([]byte("sub:\n  mode: x\nreload: 10"), &cfg)
	var e *yamlite.Error
	if !errors.As(err, &e) || e.Line != 3 || e.Col != 9 || e.Err == nil {
		t.Fatalf("got %#v", err)
	}
	if cfg.Sub.Mode != "x" {
		t.Fatalf("values before the error are decoded, got %+v", cfg.Sub)
	}

	// A TextUnmarshaler's error is wrapped.
	err = yamlite.Unmarshal([]byte("level: x"), &cfg)
	if !errors.As(err, &e) || e.Err == nil || e.Err.Error() != "want low or high" {
		t.Fatalf("got %#v", err)
	}

	// Parse reports integers beyond int64 with their path.
	_, err = yamlite.Parse([]byte("a:\n  - 9223372036854775808"))
	if !errors.As(err, &e) || e.Path != "a[0]" || e.Line != 2 || !strings.Contains(err.Error(), "does not fit in 64 bits") {
		t.Fatalf("got %v", err)
	}

	for _, v := range []any{nil, errCfg{}, (*errCfg)(nil)} {
		err := yamlite.Unmarshal([]byte("name: x"), v)
		if !errors.As(err, &e) || !strings.Contains(err.Error(), "non-nil pointer") {
			t.Fatalf("Unmarshal into %T: %v", v, err)
		}
	}

	// An interface with methods cannot be decoded into.
	var st struct{ S error }
	if err := yamlite.Unmarshal([]byte("s: x"), &st); err == nil || !strings.Contains(err.Error(), "interface type error") {
		t.Fatalf("got %v", err)
	}
}

func TestFieldNames(t *testing.T) {
	type A struct{ Name, Only string }
	type B struct{ Name string }
	type C struct {
		A
		B               // Name is ambiguous between A and B at the same depth
		Top      string `json:"top,omitempty"`
		Hidden   string `yaml:"-" json:"hidden"`
		NoJSON   string `json:"-"`
		Renamed  string `yaml:",omitempty" json:"alias"`
		HTTPAddr string
	}
	var c C
	if err := yamlite.Unmarshal([]byte("only: o\ntop: t\nalias: r\nhttpAddr: h"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Only != "o" || c.Top != "t" || c.Renamed != "r" || c.HTTPAddr != "h" {
		t.Fatalf("got %+v", c)
	}
	for _, key := range []string{"name", "hidden", "noJSON", "renamed", "Top", "a"} {
		err := yamlite.Unmarshal([]byte(key+": x"), &c)
		var e *yamlite.Error
		if !errors.As(err, &e) || e.Path != key || !strings.Contains(e.Msg, "unknown key") {
			t.Fatalf("key %q: got %v", key, err)
		}
	}

	type D struct {
		A
		Name string // shallower than A.Name: wins
	}
	var d D
	if err := yamlite.Unmarshal([]byte("name: outer\nonly: inner"), &d); err != nil || d.Name != "outer" || d.A.Name != "" || d.Only != "inner" {
		t.Fatalf("got %+v, %v", d, err)
	}
}
