package shadowlane

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// admitWithTag is Runtime.Admit with the edgeTag call in place, exactly as
// admission.go is to call it (right after extracting the wire mark).
func admitWithTag(rt *Runtime, ctx context.Context, e *Entry, g propagation.Getter) (context.Context, *Refusal) {
	st := rt.st.Load()
	var w propagation.Wire
	if e != nil && e.lower {
		w = st.codec.ExtractLower(g)
	} else {
		w = st.codec.Extract(g)
	}
	st.edgeTag(e, g, &w)
	if w.Source == propagation.SourceNone && w.Dropped == 0 {
		return ctx, nil
	}
	return rt.admitSlow(ctx, e, st, w, g, "")
}

type lowerMD map[string]string

func (m lowerMD) Get(k string) string { return m[k] }

func TestEdgeTagHook(t *testing.T) {
	c := Config{Service: "gw", Trust: TrustConfig{Keys: []KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}},
		Routing: RoutingConfig{TagSource: TagSourceConfig{Header: "X-Env", Cookie: "shadowlane-env", Query: "env"}}}
	rt, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tok, err := rt.Keyring().Sign("run-1", "proj-a", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	internal := propagation.Internal
	for _, tc := range []struct {
		name   string
		target string
		h      map[string]string
		entry  *Entry
		plain  bool // pass r.Header rather than RequestCarrier(r)
		want   propagation.Mark
	}{
		{"cookie", "/", map[string]string{"Cookie": "a=b; shadowlane-env=proj-a"}, nil, false, propagation.Mark{Env: "proj-a"}},
		{"cookie via r.Header", "/", map[string]string{"Cookie": "shadowlane-env=proj-a"}, nil, true, propagation.Mark{Env: "proj-a"}},
		{"query", "/x?q=1&env=proj-b", nil, nil, false, propagation.Mark{Env: "proj-b"}},
		{"query needs the request carrier", "/x?env=proj-b", nil, nil, true, propagation.Mark{}},
		{"header beats cookie", "/", map[string]string{"X-Env": "proj-h", "Cookie": "shadowlane-env=proj-c"}, nil, false, propagation.Mark{Env: "proj-h"}},
		{"mark header beats source", "/?env=proj-q", map[string]string{"X-Shadowlane-Env": "proj-m"}, nil, false, propagation.Mark{Env: "proj-m"}},
		{"malformed tag dropped", "/?env=a.b", nil, nil, false, propagation.Mark{}},
		{"untagged", "/", nil, nil, false, propagation.Mark{}},
		{"internal entry ignores source", "/?env=proj-a", nil, &Entry{Trust: &internal}, false, propagation.Mark{}},
		{"signed load test takes the cookie tag", "/", map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Token": tok, "Cookie": "shadowlane-env=proj-a"}, nil, false, propagation.Mark{Run: "run-1", Env: "proj-a"}},
		{"token bound to another env: untrusted", "/?env=proj-b", map[string]string{"X-Shadowlane-Run": "run-1", "X-Shadowlane-Token": tok}, nil, false, propagation.Mark{}},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		for k, v := range tc.h {
			r.Header.Set(k, v)
		}
		var g propagation.Getter = RequestCarrier(r)
		if tc.plain {
			g = r.Header
		}
		ctx, ref := admitWithTag(rt, context.Background(), tc.entry, g)
		if strings.HasSuffix(tc.name, "untrusted") { // refused: trust.onUntrusted defaults to reject
			if ref == nil || ref.HTTPStatus != 403 {
				t.Errorf("%s: not refused: %v %+v", tc.name, ref, propagation.FromContext(ctx))
			}
			continue
		}
		if ref != nil {
			t.Errorf("%s: refused: %v", tc.name, ref.Err)
			continue
		}
		if got := propagation.FromContext(ctx); got != tc.want {
			t.Errorf("%s: mark %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if n := rt.Stats().MarksDropped["malformed_env"]; n != 1 {
		t.Errorf("malformed_env drops = %d, want 1", n)
	}
	// gRPC metadata (lowercase keys): the header source only.
	ctx, _ := admitWithTag(rt, context.Background(), &Entry{lower: true}, lowerMD{"x-env": "proj-g"})
	if got := propagation.FromContext(ctx); got.Env != "proj-g" {
		t.Errorf("grpc header source: %+v", got)
	}
}

// Without a tag source the hook costs nothing, and with one an untagged
// request allocates nothing.
func TestEdgeTagHookAllocs(t *testing.T) {
	plain, err := New(Config{Trust: TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := New(Config{Trust: TrustConfig{Keys: []KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}},
		Routing: RoutingConfig{TagSource: TagSourceConfig{Header: "X-Env", Cookie: "shadowlane-env", Query: "env"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tagged.Close()
	r := httptest.NewRequest("GET", "/orders?id=7&x=y", nil)
	r.Header.Set("Cookie", "session=abc; theme=dark")
	r.Header.Set("User-Agent", "test")
	for name, rt := range map[string]*Runtime{"no source": plain, "untagged": tagged} {
		st := rt.st.Load()
		g := RequestCarrier(r)
		if n := testing.AllocsPerRun(200, func() {
			w := st.codec.Extract(g)
			st.edgeTag(nil, g, &w)
			if w.Source != propagation.SourceNone {
				t.Fatal("tagged")
			}
		}); n != 0 {
			t.Errorf("%s: %v allocs per request", name, n)
		}
	}
	var h http.Header = r.Header
	st := tagged.st.Load()
	r.Header.Set("Cookie", "session=abc; shadowlane-env=proj-a")
	if n := testing.AllocsPerRun(200, func() {
		w := st.codec.Extract(h)
		st.edgeTag(nil, h, &w)
		if w.Mark.Env != "proj-a" {
			t.Fatal("not tagged")
		}
	}); n != 0 {
		t.Errorf("tagged: %v allocs per request", n)
	}
}

// go test -run '^$' -bench EdgeTag -count 5 .
func BenchmarkEdgeTag(b *testing.B) {
	tagged, err := New(Config{Trust: TrustConfig{Keys: []KeyConfig{{ID: "k1", Secret: "0123456789abcdef0123456789abcdef"}}},
		Routing: RoutingConfig{TagSource: TagSourceConfig{Cookie: "shadowlane-env", Query: "env"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer tagged.Close()
	plain, _ := New(Config{Trust: TrustConfig{Mode: "internal"}})
	for _, bc := range []struct {
		name   string
		rt     *Runtime
		target string
		cookie string
	}{
		{"no-source", plain, "/orders?id=7", "session=abc"},
		{"untagged", tagged, "/orders?id=7", "session=abc"},
		{"cookie", tagged, "/orders?id=7", "session=abc; shadowlane-env=proj-a"},
		{"query", tagged, "/orders?id=7&env=proj-a", "session=abc"},
	} {
		r := httptest.NewRequest("GET", bc.target, nil)
		r.Header.Set("Cookie", bc.cookie)
		st := bc.rt.st.Load()
		g := RequestCarrier(r)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var w propagation.Wire
				st.edgeTag(nil, g, &w)
			}
		})
	}
}
