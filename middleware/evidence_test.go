package middleware_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
)

// A real server on loopback with the middleware around a ServeMux: marked
// requests are counted per run under the mux's pattern (the method when
// none matches), their 5xx answers and panics as errors of the run; the
// handler still sees an http.Flusher; production requests leave nothing,
// and the unmarked path stays allocation-free with the mux.
func TestRunEvidenceServeMux(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Service: "shop", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the handler lost http.Flusher")
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /pay", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "payment down", http.StatusBadGateway)
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("POST /panic", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	srv := httptest.NewServer(middleware.Handler(mux, middleware.WithRuntime(rt)))
	srv.Config.ErrorLog = discardLog()
	defer srv.Close()

	do := func(method, path string, marked bool) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if marked {
			req.Header.Set("X-Shadowlane-Run", "http-r1")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return -1 // the panic closed the connection
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if c := do("GET", "/orders/7", true); c != 200 {
			t.Fatalf("GET /orders/7: %d", c)
		}
	}
	for range 2 {
		if c := do("POST", "/pay", true); c != 502 {
			t.Fatalf("POST /pay: %d", c)
		}
	}
	do("GET", "/missing", true)
	do("GET", "/nowhere", true)
	do("POST", "/panic", true) // POST: the client does not retry it
	do("POST", "/pay", false)
	do("POST", "/panic", false)

	ev := rt.RunStatus("http-r1")
	wantEntries := []shadowlane.RunEntry{
		{Entry: "http", Route: "GET", Marked: 1},
		{Entry: "http", Route: "GET /missing", Marked: 1},
		{Entry: "http", Route: "GET /orders/{id}", Marked: 3},
		{Entry: "http", Route: "POST /panic", Marked: 1},
		{Entry: "http", Route: "POST /pay", Marked: 2},
	}
	if !slices.Equal(ev.Entries, wantEntries) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "http 502", N: 2}, {Reason: "http panic", N: 1}}; !slices.Equal(ev.Errors, want) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}

	h := middleware.Handler(mux, middleware.WithRuntime(rt))
	req := httptest.NewRequest("GET", "/orders/1", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) }); n > 0 {
		// the mux itself may allocate; compare with the bare mux
		if bare := testing.AllocsPerRun(200, func() { mux.ServeHTTP(w, req) }); n > bare {
			t.Fatalf("unmarked entry around a mux allocates %v, the bare mux %v", n, bare)
		}
	}
}

// A route the entry passes (gin's template, a gRPC method) wins; an
// unknown method is counted as "other", never as itself.
func TestRunEvidenceRouteFallback(t *testing.T) {
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	h := middleware.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), middleware.WithRuntime(rt))
	for _, m := range []string{"GET", "BREW", "PROPFIND"} {
		req := httptest.NewRequest(m, "/x/1", nil)
		req.Header.Set("X-Shadowlane-Run", "route-r1")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest("GET", "/x/1", nil)
	req.Header.Set("X-Shadowlane-Run", "route-r1")
	if _, ref := rt.AdmitRoute(req.Context(), &shadowlane.Entry{Name: "gin"}, shadowlane.RequestCarrier(req), "/x/:id"); ref != nil {
		t.Fatal(ref.Err)
	}
	want := []shadowlane.RunEntry{{Entry: "gin", Route: "/x/:id", Marked: 1}, {Entry: "http", Route: "GET", Marked: 1}, {Entry: "http", Route: "other", Marked: 2}}
	if got := rt.RunStatus("route-r1").Entries; !slices.Equal(got, want) {
		t.Fatalf("entries %+v", got)
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
