package httpstatus

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Writer records the status a handler answers with. Hand the handler
// [Writer.View], not the Writer itself: the view keeps the optional
// interfaces of the wrapped writer. A Writer may be reused (pooled) with
// [Writer.Reset].
type Writer struct {
	http.ResponseWriter
	status int // 0 until the final header is written
	view   http.ResponseWriter
}

// New returns a Writer wrapping w.
func New(w http.ResponseWriter) *Writer {
	sw := new(Writer)
	sw.Reset(w)
	return sw
}

// Reset makes sw wrap w with no status recorded; nil releases the writer
// it wrapped. The view keeps the optional interfaces of the net/http
// server's writers: Flusher, Hijacker and ReaderFrom together (HTTP/1), or
// Flusher alone (HTTP/2, httptest.ResponseRecorder). Other writers get the
// plain wrapper; http.ResponseController still reaches them through
// Unwrap. It does not allocate.
func (sw *Writer) Reset(w http.ResponseWriter) {
	sw.ResponseWriter, sw.status = w, 0
	switch w.(type) {
	case nil:
		sw.view = nil
	case http1Writer:
		sw.view = fullWriter{sw}
	case http.Flusher:
		sw.view = flushWriter{sw}
	default:
		sw.view = sw
	}
}

// http1Writer is what the net/http server's HTTP/1 writer implements
// beyond http.ResponseWriter.
type http1Writer interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
}

// View is the writer to hand to the handler.
func (sw *Writer) View() http.ResponseWriter { return sw.view }

// Status is the status of the answer: the first status code written that
// is not informational (1xx), http.StatusOK once the body (or a flush)
// came first, 0 while nothing was written.
func (sw *Writer) Status() int { return sw.status }

// WriteHeader implements http.ResponseWriter.
func (sw *Writer) WriteHeader(code int) {
	if sw.status == 0 && (code < 100 || code > 199) { // 1xx: informational, the answer is still to come
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (sw *Writer) Write(b []byte) (int, error) {
	sw.wrote()
	return sw.ResponseWriter.Write(b)
}

// wrote records the implicit 200 of a body written (or flushed) before
// any header.
func (sw *Writer) wrote() {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (sw *Writer) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

type flushWriter struct{ *Writer }

func (w flushWriter) Flush() {
	w.wrote()
	w.ResponseWriter.(http.Flusher).Flush()
}

type fullWriter struct{ *Writer }

func (w fullWriter) Flush() { flushWriter(w).Flush() }

func (w fullWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func (w fullWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote()
	return w.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
}
