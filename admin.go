package shadowlane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// AdminHeader is the header a state-changing admin request (POST) must
// carry when the endpoint has no token: a cross-site HTML form cannot set
// it, and a cross-site script cannot set it without a CORS preflight the
// endpoint never grants. Any non-empty value will do.
const AdminHeader = "X-Shadowlane-Admin"

// MaxReasonLen caps the kill switch's reason (admin endpoint and config).
const MaxReasonLen = 256

// adminSettings is what the admin endpoint checks on each request.
type adminSettings struct {
	token  string
	hosts  []string // lowercase Host names allowed besides IP literals and localhost
	closed bool     // the listener is being replaced or shut: refuse everything
}

var closedAdmin = &adminSettings{closed: true}

// hostAllowed reports whether a request's Host (or an Origin's host) names
// this endpoint: an IP literal, localhost, or a name in admin.hosts. A DNS
// rebinding attack reaches a loopback listener under the attacker's own
// name, which is none of these.
func (s *adminSettings) hostAllowed(hostport string) bool {
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "."), "["), "]")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, h := range s.hosts {
		if host == h {
			return true
		}
	}
	return false
}

// AdminHandler serves the admin API:
//
//	GET  /shadowlane/status                           runtime stats as JSON (with "runs": the runs kept)
//	GET  /shadowlane/status?run=R                     the evidence of run R ([Runtime.RunStatus])
//	POST /shadowlane/loadtest?enabled=false&reason=…  the kill switch
//	GET  /shadowlane/limits/                          live flow-control page (?format=json for the JSON view)
//
// Every request must name the endpoint in its Host header: an IP address,
// localhost, or a name listed in admin.hosts (a guard against DNS
// rebinding). When an admin token is configured every request must carry
// "Authorization: Bearer <token>". A request that changes state (any
// method but GET and HEAD) must also carry the token or, when there is no
// token, the [AdminHeader] header, and an Origin header, if sent, must be
// the endpoint itself: a cross-site form or script cannot switch load tests
// on or off. The reason is at most [MaxReasonLen] bytes.
//
// The handler follows the runtime's config in force; the endpoint that
// [Init] starts on admin.addr is replaced on reload when admin.addr moves.
func (rt *Runtime) AdminHandler() http.Handler {
	return rt.adminHandler(func() *adminSettings { return rt.st.Load().admin })
}

func (rt *Runtime) adminHandler(settings func() *adminSettings) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shadowlane/status", func(w http.ResponseWriter, r *http.Request) {
		var v any
		if q := r.URL.Query(); q.Has("run") {
			run := q.Get("run")
			if !propagation.ValidID(run) {
				http.Error(w, fmt.Sprintf("run %q is not a run id (1..%d bytes of [A-Za-z0-9_-])", run, propagation.MaxIDLen), http.StatusBadRequest)
				return
			}
			v = rt.RunStatus(run)
		} else {
			v = rt.Stats()
		}
		writeJSON(w, v)
	})
	mux.Handle("/shadowlane/limits/", http.StripPrefix("/shadowlane/limits", rt.LimitsHandler()))
	mux.HandleFunc("POST /shadowlane/loadtest", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		on, err := strconv.ParseBool(q.Get("enabled"))
		if err != nil {
			http.Error(w, "enabled must be true or false", http.StatusBadRequest)
			return
		}
		reason := q.Get("reason")
		if len(reason) > MaxReasonLen {
			http.Error(w, fmt.Sprintf("reason is %d bytes; at most %d", len(reason), MaxReasonLen), http.StatusBadRequest)
			return
		}
		rt.setLoadTest(on, reason, "admin")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"loadTestEnabled\":%t}\n", on)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := settings()
		if s == nil {
			s = &adminSettings{}
		}
		if s.closed {
			http.Error(w, "shadowlane admin: this listener is closed (admin config changed)", http.StatusServiceUnavailable)
			return
		}
		if !s.hostAllowed(r.Host) {
			http.Error(w, fmt.Sprintf("shadowlane admin: Host %q is not this endpoint (use an IP address or localhost, or list the name in admin.hosts)", r.Host), http.StatusForbidden)
			return
		}
		if s.token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
				http.Error(w, "shadowlane admin: missing or wrong bearer token", http.StatusUnauthorized)
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if origin := r.Header.Get("Origin"); origin != "" {
				u, err := url.Parse(origin)
				if err != nil || !strings.EqualFold(u.Host, r.Host) {
					http.Error(w, fmt.Sprintf("shadowlane admin: cross-origin request from %q refused", origin), http.StatusForbidden)
					return
				}
			}
			if s.token == "" && r.Header.Get(AdminHeader) == "" {
				http.Error(w, "shadowlane admin: a state change needs the "+AdminHeader+" header (or a token)", http.StatusForbidden)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// writeJSON encodes v in full before writing, so an encoding error is a
// 500 with a message, never a 200 with an empty or cut body.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "shadowlane admin: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// adminServer is one listener of the admin endpoint started by Init.
type adminServer struct {
	addr string // as configured
	ln   net.Listener
	srv  *http.Server
	set  atomic.Pointer[adminSettings]
}

func (rt *Runtime) listenAdmin(addr string, s *adminSettings) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &adminServer{addr: addr, ln: ln}
	a.set.Store(s)
	a.srv = &http.Server{Handler: rt.adminHandler(a.set.Load), ReadHeaderTimeout: 5 * time.Second}
	return a, nil
}

func (a *adminServer) serve() { go a.srv.Serve(a.ln) }

// close refuses every further request on a, then closes its listener and
// connections at once (no grace: a request must not finish under settings
// that no longer hold).
func (a *adminServer) close() error {
	a.set.Store(closedAdmin)
	err := a.srv.Close()
	_ = a.ln.Close()
	return err
}

// startAdmin starts the endpoint on st's admin.addr (if any) and makes the
// runtime manage it: from now on [Runtime.Apply] moves, re-keys or stops it.
func (rt *Runtime) startAdmin(st *compiled) error {
	rt.adminMu.Lock()
	defer rt.adminMu.Unlock()
	rt.adminManaged = true
	rt.AddCloser(func() error {
		rt.adminMu.Lock()
		defer rt.adminMu.Unlock()
		rt.adminManaged = false
		if rt.admin == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a := rt.admin
		rt.admin = nil
		rt.adminAddr.Store("")
		return a.srv.Shutdown(ctx)
	})
	if st.cfg.Admin.Addr == "" {
		return nil
	}
	a, err := rt.listenAdmin(st.cfg.Admin.Addr, st.admin)
	if err != nil {
		return fmt.Errorf("shadowlane: admin endpoint: %w", err)
	}
	a.serve()
	rt.admin = a
	rt.adminAddr.Store(a.ln.Addr().String())
	return nil
}

// prepareAdmin readies the admin endpoint for the config next: when its
// address moves, the new listener is opened now and the reload is refused
// if that fails. The returned commit, called once next is in force, starts
// the new listener and closes the old one, or hands the new token and hosts
// to the listener that stays. Callers hold rt.adminMu.
func (rt *Runtime) prepareAdmin(next *compiled) (commit func(), err error) {
	if !rt.adminManaged {
		return func() {}, nil
	}
	old := rt.admin
	addr := next.cfg.Admin.Addr
	if old != nil && old.addr == addr {
		return func() { old.set.Store(next.admin) }, nil
	}
	if old == nil && addr == "" {
		return func() {}, nil
	}
	var a *adminServer
	if addr != "" {
		a, err = rt.listenAdmin(addr, next.admin)
		if err != nil {
			where := "off"
			if old != nil {
				where = "on " + old.addr
			}
			return nil, fmt.Errorf("%w: admin.addr %q: %v; the config is not applied and the admin endpoint stays %s", ErrConfig, addr, err, where)
		}
	}
	return func() {
		if a != nil {
			a.serve()
			rt.adminAddr.Store(a.ln.Addr().String())
		} else {
			rt.adminAddr.Store("")
		}
		if old != nil {
			_ = old.close()
		}
		rt.admin = a
		rt.logger.Warn("shadowlane: admin endpoint moved", "from", addrOf(old), "to", addrOf(a))
	}, nil
}

func addrOf(a *adminServer) string {
	if a == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// AdminAddr returns the address the admin endpoint listens on ("" when off).
func (rt *Runtime) AdminAddr() string {
	if a := rt.adminAddr.Load(); a != nil {
		return a.(string)
	}
	return ""
}
