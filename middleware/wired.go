package middleware

import (
	"net/http"
	"sync"
)

var wireTransport sync.Once

// WireDefaultTransport wraps http.DefaultTransport with [Transport] (once
// per process), so http.Get, http.DefaultClient and every client without a
// transport of its own carry the mark and obey outbound.allow and the
// mocks. Orchestrion's zero-code wiring calls it at start-up (see
// orchestrion.yml); hand-wired services use [Client] instead.
func WireDefaultTransport() {
	wireTransport.Do(func() { http.DefaultTransport = Transport(http.DefaultTransport) })
}

// Wired returns h (nil: http.DefaultServeMux) behind [Handler] with the
// default runtime's trust, unless it already is such a handler. It is what
// Orchestrion's zero-code wiring puts around the handler of
// http.ListenAndServe, http.Serve (and their TLS forms) and of every
// http.Server literal (see orchestrion.yml).
func Wired(h http.Handler) http.Handler {
	if h == nil {
		h = http.DefaultServeMux
	}
	if _, ok := h.(*handler); ok {
		return h
	}
	return Handler(h, WithName("http"))
}

// WiredServer sets s.Handler to [Wired](s.Handler) and returns s (nil
// stays nil).
func WiredServer(s *http.Server) *http.Server {
	if s != nil {
		s.Handler = Wired(s.Handler)
	}
	return s
}
