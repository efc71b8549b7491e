package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// statusWriter records the status a handler answers with. It is used for
// marked requests only (see [ServeMarked]).
type statusWriter struct {
	http.ResponseWriter
	status int // 0 until the header is written
	rw     http.ResponseWriter
}

// wrapStatus wraps w, keeping the optional interfaces of the net/http
// server's writers: Flusher, Hijacker and ReaderFrom together (HTTP/1),
// or Flusher alone (HTTP/2, httptest.ResponseRecorder). Other writers get
// the plain wrapper; http.ResponseController still reaches them through
// Unwrap.
func wrapStatus(w http.ResponseWriter) *statusWriter {
	sw := &statusWriter{ResponseWriter: w}
	_, fl := w.(http.Flusher)
	_, hj := w.(http.Hijacker)
	_, rf := w.(io.ReaderFrom)
	switch {
	case fl && hj && rf:
		sw.rw = fullWriter{sw}
	case fl:
		sw.rw = flushWriter{sw}
	default:
		sw.rw = sw
	}
	return sw
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code < 100 || code > 199) { // 1xx: informational, the answer is still to come
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type flushWriter struct{ *statusWriter }

func (w flushWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.ResponseWriter.(http.Flusher).Flush()
}

type fullWriter struct{ *statusWriter }

func (w fullWriter) Flush() { flushWriter(w).Flush() }

func (w fullWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func (w fullWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
}
