package envtag_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestExtractor(t *testing.T) {
	x, err := envtag.NewExtractor(envtag.SourceConfig{Header: "x-env", Cookie: "sl_env", Query: "env"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, header, cookie string
		want                      string
		found, bad                bool
	}{
		{name: "none", url: "/a?x=1"},
		{name: "header", url: "/", header: "proj-a", want: "proj-a", found: true},
		{name: "cookie", url: "/", cookie: `a=b; sl_env=proj-c; z=1`, want: "proj-c", found: true},
		{name: "quoted cookie", url: "/", cookie: `sl_env="proj-c"`, want: "proj-c", found: true},
		{name: "query", url: "/p?x=1&env=proj-q", want: "proj-q", found: true},
		{name: "escaped query", url: "/p?%65nv=proj%2Dq", want: "proj-q", found: true},
		{name: "header wins", url: "/p?env=proj-q", header: "proj-h", cookie: "sl_env=proj-c", want: "proj-h", found: true},
		{name: "cookie before query", url: "/p?env=proj-q", cookie: "sl_env=proj-c", want: "proj-c", found: true},
		{name: "malformed header", url: "/", header: "proj a", found: true, bad: true},
		{name: "malformed query", url: "/p?env=%zz", found: true, bad: true},
		{name: "empty query value", url: "/p?env=", found: true, bad: true},
		{name: "similar names ignored", url: "/p?envx=proj-q&xenv=1", cookie: "sl_envx=proj-c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.url, nil)
			if tc.header != "" {
				r.Header.Set("X-Env", tc.header)
			}
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			tag, found, err := x.Tag(r)
			if found != tc.found || tag != tc.want || (err != nil) != tc.bad {
				t.Fatalf("Tag = %q, %v, %v; want %q, %v, bad=%v", tag, found, err, tc.want, tc.found, tc.bad)
			}
			if tc.bad && !errors.Is(err, propagation.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
	if _, err := envtag.NewExtractor(envtag.SourceConfig{}); err == nil {
		t.Error("empty source config accepted")
	}
	if _, err := envtag.NewExtractor(envtag.SourceConfig{Cookie: "a;b"}); err == nil {
		t.Error("bad cookie name accepted")
	}
}

func TestExtractorUntaggedAllocs(t *testing.T) {
	x, _ := envtag.NewExtractor(envtag.SourceConfig{Header: "x-env", Cookie: "sl_env", Query: "env"})
	r := httptest.NewRequest("GET", "/p?a=1&b=2", nil)
	r.Header.Set("Cookie", "session=abc; theme=dark")
	if n := testing.AllocsPerRun(100, func() { x.Tag(r) }); n != 0 {
		t.Fatalf("untagged Tag allocates %v times", n)
	}
}

func TestExtractorMiddleware(t *testing.T) {
	x, _ := envtag.NewExtractor(envtag.SourceConfig{Query: "env"})
	var got propagation.Mark
	h := x.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = propagation.FromContext(r.Context())
	}))
	r := httptest.NewRequest("GET", "/?env=proj-a", nil)
	r = r.WithContext(propagation.With(r.Context(), propagation.Mark{Run: "r1"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || got != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
		t.Fatalf("code %d mark %v", w.Code, got)
	}
	got = propagation.Mark{Env: "untouched"}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/?env=a%20b", nil))
	if w.Code != http.StatusBadRequest || got.Env != "untouched" {
		t.Fatalf("malformed tag: code %d, handler ran: %v", w.Code, got.Env != "untouched")
	}
}

func FuzzQueryValue(f *testing.F) {
	for _, s := range []string{"env=proj-a", "a=1&env=x%2dy", "env", "%65nv=1&env=2", "=&&=", "env=%zz", "env=a+b"} {
		f.Add(s)
	}
	x, _ := envtag.NewExtractor(envtag.SourceConfig{Query: "env", Cookie: "env"})
	f.Fuzz(func(t *testing.T, q string) {
		v, ok := envtag.QueryValue(q, "env")
		if !ok && v != "" {
			t.Fatalf("not found but value %q", v)
		}
		r := &http.Request{Header: http.Header{"Cookie": {q}}, URL: nil}
		tag, found, err := x.Tag(r)
		if err == nil && found && !propagation.ValidID(tag) {
			t.Fatalf("accepted malformed tag %q", tag)
		}
	})
}
