package rediskeys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow/rediskeys/internal/gen"
)

// commandsJSON reads the committed generator input,
// internal/gen/redis-commands.json (SHADOWLANE_REDIS_COMMANDS overrides it).
func commandsJSON(t testing.TB) []byte {
	t.Helper()
	p := os.Getenv("SHADOWLANE_REDIS_COMMANDS")
	if p == "" {
		p = filepath.Join("internal", "gen", "redis-commands.json")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("redis-commands.json, the input of go generate, is missing: %v", err)
	}
	return b
}

func TestGeneratedTableInSync(t *testing.T) {
	src := commandsJSON(t)
	want, err := gen.Generate(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zz_commands.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("zz_commands.go is stale: run `go generate` in shadow/rediskeys")
	}
}

func TestGenerateRejectsUnknownSemantics(t *testing.T) {
	for _, doc := range []string{
		`{"commands":{"X":{"arity":2,"key_specs":[{"flags":["RO","NEWFLAG"],"begin_search":{"index":{"pos":1}},"find_keys":{"range":{"lastkey":0,"step":1,"limit":0}}}]}}}`,
		`{"commands":{"X":{"arity":2,"key_specs":[{"flags":["RO"],"begin_search":{"magic":{}},"find_keys":{"range":{"lastkey":0,"step":1,"limit":0}}}]}}}`,
		`{"commands":{"X":{"arity":2,"key_specs":[{"flags":["RO"],"begin_search":{"index":{"pos":1,"extra":2}},"find_keys":{"range":{"lastkey":0,"step":1,"limit":0}}}]}}}`,
		`{"commands":{"X SUB":{"arity":2,"container":"X"}}}`,
		`{"commands":{}}`,
		`not json`,
	} {
		if _, err := gen.Generate([]byte(doc)); err == nil {
			t.Errorf("Generate(%s) succeeded, want an error", doc)
		}
	}
}

func TestLookup(t *testing.T) {
	if Len() < 300 {
		t.Fatalf("table has %d commands", Len())
	}
	for _, n := range []string{"get", "GET", "GeT"} {
		if c := Lookup(n); c == nil || c.Name != "GET" {
			t.Errorf("Lookup(%q) = %v", n, c)
		}
	}
	if Lookup("nosuchcommand") != nil || Lookup(strings.Repeat("x", 40)) != nil {
		t.Error("unknown command found")
	}
	if c := FindCommand([]any{"OBJECT", "Encoding", "k"}); c == nil || c.Name != "OBJECT ENCODING" {
		t.Errorf("OBJECT ENCODING = %v", c)
	}
	if c := FindCommand([]any{"object", "nosuch", "k"}); c != nil {
		t.Errorf("unknown subcommand resolved to %v", c.Name)
	}
	if c := FindCommand([]any{"object"}); c == nil || c.Name != "OBJECT" {
		t.Errorf("bare container = %v", c)
	}
	if FindCommand(nil) != nil || FindCommand([]any{42}) != nil {
		t.Error("bad argv resolved")
	}
	n := AllAllocs(t, func() { _ = FindCommand([]any{"XINFO", "STREAM", "s"}) })
	if n != 0 {
		t.Errorf("FindCommand allocates %v", n)
	}
}

func AllAllocs(t *testing.T, f func()) float64 { t.Helper(); return testing.AllocsPerRun(100, f) }

func positions(t *testing.T, args ...any) ([]int, error) {
	t.Helper()
	c := FindCommand(args)
	if c == nil {
		t.Fatalf("%v: unknown", args)
	}
	ps, err := c.KeyPositions(args, nil)
	var out []int
	for _, p := range ps {
		out = append(out, p.Index)
	}
	return out, err
}

func TestKeyPositions(t *testing.T) {
	cases := []struct {
		args []any
		want []int
		err  error
	}{
		{[]any{"get", "k"}, []int{1}, nil},
		{[]any{"set", "k", "v", "ex", 10}, []int{1}, nil},
		{[]any{"mset", "a", 1, "b", 2}, []int{1, 3}, nil},
		{[]any{"del", "a", "b", "c"}, []int{1, 2, 3}, nil},
		{[]any{"zunionstore", "d", "2", "a", "b", "weights", 1, 2}, []int{1, 3, 4}, nil},
		{[]any{"zunionstore", "d", 2, "a", "b"}, []int{1, 3, 4}, nil},
		{[]any{"eval", "return 1", "2", "a", "b", "arg"}, []int{3, 4}, nil},
		{[]any{"eval", "return 1", "0", "arg"}, nil, nil},
		{[]any{"eval", "return 1", "x"}, nil, ErrBadArgs},
		{[]any{"eval", "return 1", "5", "a"}, nil, ErrBadArgs},
		{[]any{"xread", "count", 1, "streams", "s1", "s2", "0", "0"}, []int{4, 5}, nil},
		{[]any{"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"}, []int{5}, nil},
		{[]any{"georadius", "k", 1, 2, 3, "m", "store", "dst"}, []int{1, 7}, nil},
		{[]any{"georadius", "k", 1, 2, 3, "m"}, []int{1}, nil},
		{[]any{"blmpop", 0, 2, "a", "b", "left"}, []int{3, 4}, nil},
		{[]any{"object", "encoding", "k"}, []int{2}, nil},
		{[]any{"xinfo", "stream", "s", "full"}, []int{2}, nil},
		{[]any{"lmove", "a", "b", "left", "right"}, []int{1, 2}, nil},
		{[]any{"spublish", "ch", "msg"}, []int{1}, nil},
		{[]any{"sort", "k", "by", "w_*"}, nil, ErrUnknownSpec},
		{[]any{"migrate", "h", 1, "", 0, 10, "keys", "a", "b"}, nil, ErrUnknownSpec},
		{[]any{"get"}, nil, ErrBadArgs},
	}
	for _, tc := range cases {
		got, err := positions(t, tc.args...)
		if !errors.Is(err, tc.err) {
			t.Errorf("%v: err %v, want %v", tc.args, err, tc.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: positions %v, want %v", tc.args, got, tc.want)
		}
	}
}

// Every command with a pattern or channel argument must have an explicit
// policy, and every policy must name a command of the table.
func TestPolicyCoversPatternsAndChannels(t *testing.T) {
	names := map[string]*Command{}
	for _, c := range commands {
		names[c.Name] = c
		for _, s := range c.Subcommands {
			names[s.Name] = s
		}
	}
	var missing []string
	for n, c := range names {
		if c.Flags&(FlagPatternArg|FlagChannelArg) != 0 {
			if _, ok := policies[n]; !ok {
				missing = append(missing, n)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("commands with pattern/channel arguments but no policy: %v", missing)
	}
	for n := range policies {
		if names[n] == nil {
			t.Errorf("policy for %q, which the table does not know", n)
		}
	}
	if len(names) != Len() {
		t.Errorf("walked %d commands, table says %d", len(names), Len())
	}
}
