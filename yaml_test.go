package shadowlane

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const realisticYAML = `# shadowlane config
service: gateway
env: ""
trust:
  mode: edge          # edge | internal
  onUntrusted: reject
  keys:
    - id: k1
      secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
    - {id: k0, secretEnv: OLD_KEY}
headers: {run: X-Run, envMember: lt.env}
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
  hosts: [gw-admin.internal]
reload: 2s
limits:
  rules:
    - &base {name: orders, resource: "POST /orders", qps: 100, burst: 10, maxWait: 50ms}
    - <<: *base
      name: orders-loadtest
      class: loadtest
      qps: 20
`

func TestDecodeRealisticConfig(t *testing.T) {
	var c Config
	if err := unmarshalYAML([]byte(realisticYAML), &c); err != nil {
		t.Fatal(err)
	}
	if c.Service != "gateway" || c.Trust.OnUntrusted != "reject" || len(c.Trust.Keys) != 2 || c.Trust.Keys[1].SecretEnv != "OLD_KEY" ||
		c.Headers.RunHeader != "X-Run" || c.Headers.EnvMember != "lt.env" || c.LoadTest.Enabled == nil || !*c.LoadTest.Enabled ||
		len(c.Outbound.Allow) != 3 || c.Outbound.Allow[1] != "127.0.0.1" || c.Outbound.Mocks[0].Body != "{\"ok\": true}\n" ||
		c.Outbound.Mocks[0].Headers["Content-Type"] != "application/json" || c.Admin.Hosts[0] != "gw-admin.internal" ||
		c.Reload == nil || *c.Reload != 2*time.Second {
		t.Fatalf("decoded %+v", c)
	}
	// the merge key copies the anchored rule and overrides three fields
	r := c.Limits.Rules
	if len(r) != 2 || r[1].Name != "orders-loadtest" || r[1].Resource != "POST /orders" || r[1].QPS != 20 || r[1].Burst != 10 ||
		r[1].MaxWait != 50*time.Millisecond || r[1].Class != "loadtest" || r[0].Class != "" {
		t.Fatalf("rules %+v", r)
	}
}

// Every field of Config, at any depth, has a yaml tag: yaml.v3 would
// otherwise expect the lowercased Go name ("onuntrusted").
func TestEveryConfigFieldHasYAMLTag(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, path string) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice || tp.Kind() == reflect.Map {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || seen[tp] || tp == reflect.TypeFor[time.Time]() {
			return
		}
		seen[tp] = true
		for i := range tp.NumField() {
			f := tp.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Tag.Get("yaml") == "" {
				t.Errorf("%s.%s (%s) has no yaml tag", path, f.Name, tp)
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[Config](), "Config")
}

func TestDecodeErrorsNameLineColumnAndPath(t *testing.T) {
	for _, tc := range []struct {
		name, yaml  string
		line, col   int
		field, text string
	}{
		{"unknown field", "trust:\n  mdoe: edge\n", 2, 3, "trust.mdoe", `unknown field "mdoe"`},
		{"unknown nested in a list", "trust:\n  keys:\n    - id: a\n      secert: x\n", 4, 7, "trust.keys[0].secert", `unknown field "secert"`},
		{"unknown in a flow mapping", "outbound: {allow: [a], mock: []}\n", 1, 24, "outbound.mock", `unknown field "mock"`},
		{"wrong type", "limits:\n  rules:\n    - {name: a, resource: r, qps: lots}\n", 3, 35, "limits.rules[0].qps", `expected a number (float64), got the string "lots"`},
		{"list for a string", "service: [a, b]\n", 1, 10, "service", "expected a string, got a sequence"},
		{"scalar for a section", "trust: edge\n", 1, 8, "trust", `expected a mapping, got the string "edge"`},
		{"duration without unit", "reload: 5\n", 1, 9, "reload", `expected a duration like "1.5s", got the integer "5"`},
		{"bad duration", "reload: soon\n", 1, 9, "reload", `expected a duration like "1.5s", got the string "soon"`},
		{"duplicate key", "service: a\nservice: b\n", 2, 1, "service", `duplicate key "service" (first at line 1)`},
		{"syntax", "trust:\n  mode: [edge\n", -1, 0, "", "did not find expected"},
		{"tab indentation", "trust:\n\tmode: edge\n", 2, 0, "", "tab"},
		{"second document", "service: a\n---\nservice: b\n", 2, 1, "", "second YAML document"},
		{"unknown anchor", "service: *nope\n", 0, 0, "", "unknown anchor"}, // yaml.v3 gives no line here
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeConfig("f.yaml", []byte(tc.yaml))
			var fe *DecodeError
			var field *FieldError
			if !errors.Is(err, ErrConfig) || !errors.As(err, &fe) || !errors.As(err, &field) || field.Field != fe.Field {
				t.Fatalf("want a DecodeError (and its FieldError) wrapping ErrConfig, got %v", err)
			}
			if (tc.line >= 0 && fe.Line != tc.line || tc.line < 0 && fe.Line < 1) || tc.col != 0 && fe.Col != tc.col || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.text) {
				t.Fatalf("got line %d col %d field %q msg %q (%v); want line %d col %d field %q containing %q",
					fe.Line, fe.Col, fe.Field, fe.Msg, err, tc.line, tc.col, tc.field, tc.text)
			}
			if !strings.Contains(err.Error(), "f.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestDecodeEveryErrorReported(t *testing.T) {
	_, err := decodeConfig("f.yaml", []byte("servise: a\ntrust:\n  mode: [x]\nreload: never\n"))
	for _, want := range []string{"line 1, column 1, servise:", "line 3, column 9, trust.mode:", "line 4, column 9, reload:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// What changed for users with yaml.v3 (see the note on issue 20): anchors,
// aliases and merge keys work, YAML 1.1 booleans (yes/no/on/off) are read
// into bool fields, an empty file is an empty config.
func TestDecodeYAMLBehaviour(t *testing.T) {
	var c Config
	if err := unmarshalYAML([]byte("loadTest: {enabled: off}\ninstallPropagator: yes\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.LoadTest.Enabled == nil || *c.LoadTest.Enabled || c.InstallPropagator == nil || !*c.InstallPropagator {
		t.Fatalf("1.1 booleans: %+v", c)
	}
	c = Config{}
	if err := unmarshalYAML([]byte("defaults: &d\n  mode: internal\n"), &c); err == nil || !strings.Contains(err.Error(), `unknown field "defaults"`) {
		t.Fatalf("an anchor on an unknown top-level key must still be refused: %v", err)
	}
	if err := unmarshalYAML([]byte("trust: &t {mode: internal}\nservice: a\n"), &c); err != nil || c.Trust.Mode != "internal" {
		t.Fatalf("anchor: %+v %v", c, err)
	}
	for _, empty := range []string{"", "\n", "# only a comment\n", "---\n"} {
		c = Config{}
		if err := unmarshalYAML([]byte(empty), &c); err != nil || !reflect.DeepEqual(c, Config{}) {
			t.Errorf("%q: %+v %v", empty, c, err)
		}
	}
	// a billion-laughs document is refused, not expanded
	lol := "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	if err := unmarshalYAML([]byte(lol), &c); err == nil {
		t.Fatal("billion laughs accepted")
	}
}

// FuzzDecodeConfig: no input panics or hangs; every error is a *DecodeError that
// wraps ErrConfig and has a message, and one naming a field also names a
// line; a decoded config survives a round trip through yaml.Marshal.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		realisticYAML, "", "service: a\n", "trust:\n  mdoe: edge\n", "reload: 5\n", "a: &x 1\nb: *x\n",
		"limits:\n  rules:\n    - &r {name: a, qps: 1}\n    - {<<: *r, name: b}\n", "service: a\n---\nb: 1\n",
		"trust: {keys: [{id: k, secret: s}, {id: j}]}\n", "headers: {run: baggage, env: X}\n", "outbound: {allow: ['*']}\n",
		"\uFEFFservice: x\r\nenv: y\r\n", "loadTest: {enabled: off, reason: \"\\u00e9\"}\n",
		"migration: {phase: 2, topics: {orders.created: order-events, a: b}}\n", "migration: {phase: -1, topix: {}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan string, 1)
		go func() { done <- checkDecode(data) }()
		select {
		case msg := <-done:
			if msg != "" {
				t.Fatal(msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d bytes took over 5s to decode and round-trip: %q", len(data), data)
		}
	})
}

// checkDecode returns what is wrong with decoding data, or "".
func checkDecode(data []byte) string {
	c, err := decodeConfig("fuzz.yaml", data)
	if err != nil {
		var fe *DecodeError
		if !errors.Is(err, ErrConfig) || !errors.As(err, &fe) || fe.Msg == "" {
			return fmt.Sprintf("error %v (%T) is not a DecodeError wrapping ErrConfig", err, err)
		}
		if fe.Field != "" && fe.Line < 1 {
			return fmt.Sprintf("error names %q but no line: %v", fe.Field, err)
		}
		return ""
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("marshal %+v: %v", c, err)
	}
	again, err := decodeConfig("again.yaml", out)
	if err != nil || !reflect.DeepEqual(normalize(again), normalize(c)) {
		return fmt.Sprintf("round trip of %+v via\n%s\ngave %+v, %v", c, out, again, err)
	}
	return ""
}

// normalize maps empty slices and maps to nil (yaml.Marshal omits neither,
// but an empty flow collection decodes to an empty, non-nil value).
func normalize(c Config) Config {
	v := reflect.ValueOf(&c).Elem()
	var walk func(reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
				return
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
	walk(v)
	return c
}
