package httpstatus_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/internal/httpstatus"
)

// plain has none of the optional interfaces.
type plain struct{ http.ResponseWriter }

// http1 has what the HTTP/1 server's writer has.
type http1 struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (w *http1) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return nil, nil, nil
}

func (w *http1) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseRecorder, r) }

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{"nothing", func(http.ResponseWriter) {}, 0},
		{"body first", func(w http.ResponseWriter) { w.Write([]byte("x")) }, 200},
		{"header", func(w http.ResponseWriter) { w.WriteHeader(503); w.WriteHeader(200) }, 503},
		{"early hints then 500", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(500) }, 500},
		{"flush first", func(w http.ResponseWriter) { w.(http.Flusher).Flush(); w.WriteHeader(500) }, 200},
		{"read from first", func(w http.ResponseWriter) { w.(io.ReaderFrom).ReadFrom(strings.NewReader("x")) }, 200},
	} {
		rec := &http1{ResponseRecorder: httptest.NewRecorder()}
		sw := httpstatus.New(rec)
		tc.write(sw.View())
		if sw.Status() != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, sw.Status(), tc.want)
		}
	}
}

func TestViews(t *testing.T) {
	rec := httptest.NewRecorder()
	for _, tc := range []struct {
		name               string
		w                  http.ResponseWriter
		flush, hijack, rdf bool
	}{
		{"HTTP/1", &http1{ResponseRecorder: rec}, true, true, true},
		{"flusher only", rec, true, false, false},
		{"plain", plain{rec}, false, false, false},
	} {
		v := httpstatus.New(tc.w).View()
		_, fl := v.(http.Flusher)
		_, hj := v.(http.Hijacker)
		_, rf := v.(io.ReaderFrom)
		if fl != tc.flush || hj != tc.hijack || rf != tc.rdf {
			t.Errorf("%s: Flusher %v, Hijacker %v, ReaderFrom %v", tc.name, fl, hj, rf)
		}
		if u, ok := v.(interface{ Unwrap() http.ResponseWriter }); !ok || u.Unwrap() != tc.w {
			t.Errorf("%s: Unwrap does not reach the wrapped writer", tc.name)
		}
	}
	h := &http1{ResponseRecorder: httptest.NewRecorder()}
	if _, _, err := httpstatus.New(h).View().(http.Hijacker).Hijack(); err != nil || !h.hijacked {
		t.Error("Hijack not passed on")
	}
}

func TestResetAllocs(t *testing.T) {
	sw := httpstatus.New(nil)
	rec := httptest.NewRecorder()
	h1 := &http1{ResponseRecorder: rec}
	if n := testing.AllocsPerRun(100, func() {
		sw.Reset(rec)
		sw.View().WriteHeader(500)
		sw.Reset(h1)
		sw.Reset(nil)
	}); n != 0 {
		t.Errorf("Reset allocates %v", n)
	}
	if sw.View() != nil || sw.Status() != 0 {
		t.Error("Reset(nil) kept the writer")
	}
}
