package rediskeys

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/shadow"
)

var keyMode = &Rewriter{Naming: shadow.DefaultKey}

func TestRewrite(t *testing.T) {
	cases := []struct {
		in, want []any
		appendix []any
		reply    Reply
	}{
		{[]any{"get", "k"}, []any{"get", "shadow:k"}, nil, ReplyNone},
		{[]any{"set", []byte("k"), "v", "px", 5}, []any{"set", "shadow:k", "v", "px", 5}, nil, ReplyNone},
		{[]any{"mset", "a", "1", "b", "2"}, []any{"mset", "shadow:a", "1", "shadow:b", "2"}, nil, ReplyNone},
		{[]any{"eval", "s", 1, "a", "x"}, []any{"eval", "s", 1, "shadow:a", "x"}, nil, ReplyNone},
		{[]any{"keys", "user:*"}, []any{"keys", "shadow:user:*"}, nil, ReplyNameList},
		{[]any{"scan", 0, "match", "u*", "count", 10}, []any{"scan", 0, "match", "shadow:u*", "count", 10}, nil, ReplyScan},
		{[]any{"scan", 0}, []any{"scan", 0}, []any{"match", "shadow:*"}, ReplyScan},
		{[]any{"hscan", "h", 0, "match", "f*"}, []any{"hscan", "shadow:h", 0, "match", "f*"}, nil, ReplyNone},
		{[]any{"blpop", "a", "b", 0}, []any{"blpop", "shadow:a", "shadow:b", 0}, nil, ReplyFirstName},
		{[]any{"publish", "ch", "m"}, []any{"publish", "shadow:ch", "m"}, nil, ReplyNone},
		{[]any{"psubscribe", "news.*"}, []any{"psubscribe", "shadow:news.*"}, nil, ReplyNone},
		{[]any{"pubsub", "channels"}, []any{"pubsub", "channels"}, []any{"shadow:*"}, ReplyNameList},
		{[]any{"pubsub", "numsub", "a", "b"}, []any{"pubsub", "numsub", "shadow:a", "shadow:b"}, nil, ReplyNameCounts},
		{[]any{"sort", "k", "limit", 0, 5, "get", "#", "alpha", "store", "d"}, []any{"sort", "shadow:k", "limit", 0, 5, "get", "#", "alpha", "store", "shadow:d"}, nil, ReplyNone},
		{[]any{"sort", "k", "by", "nosort"}, []any{"sort", "shadow:k", "by", "nosort"}, nil, ReplyNone},
		{[]any{"ping"}, []any{"ping"}, nil, ReplyNone},
		{[]any{"xread", "streams", "s", "0"}, []any{"xread", "streams", "shadow:s", "0"}, nil, ReplyStreams},
	}
	for _, tc := range cases {
		args := append([]any(nil), tc.in...)
		res, err := keyMode.Rewrite(args)
		if err != nil {
			t.Errorf("%v: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(args, tc.want) || !reflect.DeepEqual(res.Append, tc.appendix) || res.Reply != tc.reply {
			t.Errorf("%v: got %v + %v (reply %d), want %v + %v (reply %d)", tc.in, args, res.Append, res.Reply, tc.want, tc.appendix, tc.reply)
		}
		res.Restore(args)
		if !reflect.DeepEqual(args, tc.in) {
			t.Errorf("%v: restored to %v", tc.in, args)
		}
	}
}

func TestRewriteSuffixAndEscaping(t *testing.T) {
	rw := &Rewriter{Naming: shadow.Naming{Prefix: "[pt]*", Suffix: "?"}}
	args := []any{"keys", "a*"}
	if _, err := rw.Rewrite(args); err != nil {
		t.Fatal(err)
	}
	if args[1] != `\[pt\]\*a*\?` {
		t.Fatalf("pattern %q", args[1])
	}
}

func TestRewriteRefuses(t *testing.T) {
	cases := []struct {
		rw   *Rewriter
		args []any
		want error
	}{
		{keyMode, []any{"flushall"}, shadow.ErrBlocked},
		{keyMode, []any{"flushdb"}, shadow.ErrBlocked},
		{keyMode, []any{"swapdb", 0, 1}, shadow.ErrBlocked},
		{keyMode, []any{"select", 1}, shadow.ErrBlocked},
		{keyMode, []any{"config", "set", "maxmemory", "1"}, shadow.ErrBlocked},
		{keyMode, []any{"debug", "sleep", "0"}, shadow.ErrBlocked},
		{keyMode, []any{"randomkey"}, shadow.ErrBlocked},
		{keyMode, []any{"dbsize"}, shadow.ErrBlocked},
		{keyMode, []any{"object"}, shadow.ErrUnsupported},
		{keyMode, []any{"sort", "k", "by", "w_*"}, shadow.ErrBlocked},
		{keyMode, []any{"sort", "k", "get", "o_*"}, shadow.ErrBlocked},
		{keyMode, []any{"sort", "k", "frobnicate"}, shadow.ErrUnsupported},
		{keyMode, []any{"migrate", "h", 1, "k", 0, 10}, shadow.ErrBlocked},
		{keyMode, []any{"move", "k", 1}, shadow.ErrBlocked},
		{keyMode, []any{"copy", "a", "b", "db", 1}, shadow.ErrBlocked},
		{keyMode, []any{"frobnicate", "k"}, shadow.ErrUnsupported},
		{keyMode, []any{}, shadow.ErrUnsupported},
		{keyMode, []any{"get", struct{}{}}, shadow.ErrUnsupported},
		{keyMode, []any{"get", failMarshal{}}, shadow.ErrUnsupported},
		{keyMode, []any{"mset", "a", "1", "b", failMarshal{}, failMarshal{}, "2"}, shadow.ErrUnsupported},
		{keyMode, []any{"get", (*nilMarshal)(nil)}, shadow.ErrUnsupported},
		{keyMode, []any{"get"}, shadow.ErrUnsupported},
		{keyMode, []any{"eval", "s", "x", "a"}, shadow.ErrUnsupported},
		{keyMode, []any{"scan", 0, "match"}, shadow.ErrUnsupported},
		{&Rewriter{Naming: shadow.DefaultKey, StrictScripts: true}, []any{"eval", "s", 0}, shadow.ErrBlocked},
		{&Rewriter{}, []any{"get", "k"}, shadow.ErrNoShadowTarget},
		{&Rewriter{Dedicated: true}, []any{"flushall"}, shadow.ErrBlocked},
		{&Rewriter{Dedicated: true}, []any{"copy", "a", "b", "DB", 0}, shadow.ErrBlocked},
	}
	for _, tc := range cases {
		orig := append([]any(nil), tc.args...)
		_, err := tc.rw.Rewrite(tc.args)
		var se *shadow.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &se) || se.Store != "redis" || se.Rule == "" {
			t.Errorf("%v: err %v, want %v with store and rule", orig, err, tc.want)
		}
		if len(orig) > 0 && !reflect.DeepEqual(orig, tc.args) {
			t.Errorf("%v: args changed on refusal: %v", orig, tc.args)
		}
	}
}

func TestDedicatedRunsWholeKeyspaceCommands(t *testing.T) {
	rw := &Rewriter{Dedicated: true}
	for _, args := range [][]any{{"randomkey"}, {"dbsize"}, {"keys", "*"}, {"scan", 0}, {"sort", "k", "by", "w_*"}, {"get", "k"}} {
		orig := append([]any(nil), args...)
		res, err := rw.Rewrite(args)
		if err != nil || res.Append != nil || !reflect.DeepEqual(orig, args) {
			t.Errorf("%v: %v %v %v", orig, err, res.Append, args)
		}
	}
}

func TestGuard(t *testing.T) {
	refused := [][]any{
		{"get", "shadow:k"}, {"mset", "a", "1", "shadow:b", "2"}, {"keys", "shadow:*"},
		{"scan", 0, "match", "shadow:*"}, {"publish", "shadow:ch", "x"}, {"psubscribe", "shadow:*"},
		{"eval", "s", 1, "shadow:a"}, {"sort", "k", "store", "shadow:d"}, {"object", "encoding", "shadow:k"},
	}
	for _, args := range refused {
		_, err := keyMode.Guard(args)
		var se *shadow.Error
		if !errors.Is(err, shadow.ErrShadowFromProduction) || !errors.As(err, &se) || !strings.HasPrefix(se.Target, "shadow:") {
			t.Errorf("%v: %v", args, err)
		}
	}
	passed := []struct {
		args  []any
		reply Reply
	}{
		{[]any{"get", "k"}, ReplyNone}, {[]any{"publish", "ch", "shadow:msg"}, ReplyNone},
		{[]any{"set", "k", "shadow:value"}, ReplyNone}, {[]any{"keys", "*"}, ReplyNameList},
		{[]any{"scan", 0}, ReplyScan}, {[]any{"frobnicate", "shadow:x"}, ReplyNone},
	}
	for _, tc := range passed {
		r, err := keyMode.Guard(tc.args)
		if err != nil || r != tc.reply {
			t.Errorf("%v: %v %v", tc.args, r, err)
		}
	}
	if r, err := (&Rewriter{Dedicated: true}).Guard([]any{"get", "shadow:k"}); err != nil || r != ReplyNone {
		t.Error("guard without naming refused")
	}
	args := []any{"mget", "a", "b", "c"}
	if n := testing.AllocsPerRun(100, func() { _, _ = keyMode.Guard(args) }); n != 0 {
		t.Errorf("Guard allocates %v", n)
	}
}

func BenchmarkGuardGet(b *testing.B) {
	args := []any{"get", "user:1"}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = keyMode.Guard(args)
	}
}

func BenchmarkRewriteGet(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		args := []any{"get", "user:1"}
		res, _ := keyMode.Rewrite(args)
		res.Restore(args)
	}
}
