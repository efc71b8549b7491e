package envtag

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HealthConfig is the passive health checking of a [Transport] (option
// [WithHealth]; the zero value means the defaults).
//
// An instance whose connections fail Failures times in a row (the dial
// failed: refused, unreachable, timed out, or not done within the policy's
// connect grace, see [Config.ConnectGrace]; nothing was sent) is ejected:
// it leaves the rotation of its environment, exactly as if it had left the
// registry, so a tagged request whose lane has no other instance follows
// the configured fallback rule (or fails under strict mode), and an
// untagged request never goes anywhere but trunk. After Ejection the
// transport re-probes the instance with a TCP connect; when it answers the
// instance is readmitted, else it stays out for twice as long (up to
// MaxEjection). A successful request resets the count.
//
// A request whose attempt failed is retried on another instance of the
// same lane (the same environment label as the instance it was sent to,
// never another environment), up to Retries times, when nothing was sent
// (the connection failed; any method) or, for idempotent requests (GET,
// HEAD, OPTIONS, TRACE, PUT, DELETE, or an Idempotency-Key header), when
// the attempt failed without a response. A request body is replayed only
// through Request.GetBody; without it a request with a body is not
// retried. Every connection failure, ejection, readmission and retry is
// counted per service ([Health]).
type HealthConfig struct {
	// Disabled turns ejection and retries off.
	Disabled bool
	// Failures is the number of consecutive connection failures that
	// eject an instance (default 2).
	Failures int
	// Ejection is how long an instance stays out before its first
	// re-probe (default 1s); doubled after each failed re-probe.
	Ejection time.Duration
	// MaxEjection caps the doubled ejection time (default 15s).
	MaxEjection time.Duration
	// ProbeTimeout bounds a re-probe's TCP connect (default 1s).
	ProbeTimeout time.Duration
	// Retries is the number of other instances of the same lane a failed
	// request is retried on (default 2; negative: no retries).
	Retries int
}

func (c HealthConfig) withDefaults() HealthConfig {
	if c.Failures <= 0 {
		c.Failures = 2
	}
	if c.Ejection <= 0 {
		c.Ejection = time.Second
	}
	if c.MaxEjection <= 0 {
		c.MaxEjection = 15 * time.Second
	}
	if c.MaxEjection < c.Ejection {
		c.MaxEjection = c.Ejection
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Retries < 0 || c.Disabled {
		c.Retries = 0
	}
	return c
}

// WithHealth sets the transport's passive health checking (default: on,
// with the defaults of [HealthConfig]).
func WithHealth(c HealthConfig) TransportOption { return func(t *Transport) { t.health = c } }

// target is one routable instance: the endpoint and the health record of
// its address (shared by the pools built while the address stays listed).
type target struct {
	ep Endpoint
	h  *instHealth
}

// instHealth is the health record of one address of one service.
type instHealth struct {
	key   string
	fails atomic.Int32 // consecutive connection failures
	// guarded by watch.mu:
	ejected bool
	timer   *time.Timer
	level   atomic.Int32 // consecutive ejections: the backoff exponent
}

// watch is one watched service: its registry set, the health of its
// instances and the current routing snapshot.
type watch struct {
	t       *Transport
	service string
	done    chan struct{} // closed once the first set arrived (or err is set)
	err     error
	pool    atomic.Pointer[Pool[*target]]

	mu     sync.Mutex
	eps    []Endpoint
	health map[string]*instHealth // by AddrKey
	closed bool
}

// setEndpoints takes a new registry set. A set that lists an address
// under two environments (a registry that does not check, see
// [CheckConflicts]) is refused: the previous set stays in force (none at
// first: every request fails).
func (w *watch) setEndpoints(eps []Endpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if CheckConflicts(eps) != nil {
		if w.pool.Load() == nil {
			w.eps = nil
			w.rebuildLocked()
		}
		return
	}
	w.eps = eps
	keep := make(map[string]*instHealth, len(eps))
	for _, e := range eps {
		k := AddrKey(e.Addr)
		if h := w.health[k]; h != nil {
			keep[k] = h
		} else if keep[k] == nil {
			keep[k] = &instHealth{key: k}
		}
	}
	for k, h := range w.health {
		if keep[k] == nil && h.timer != nil {
			h.timer.Stop() // the address left the registry: stop probing it
		}
	}
	w.health = keep
	w.rebuildLocked()
}

// rebuildLocked publishes a routing snapshot of the registry set without
// the ejected instances.
func (w *watch) rebuildLocked() {
	members := make([]Member[*target], 0, len(w.eps))
	for _, e := range w.eps {
		h := w.health[AddrKey(e.Addr)]
		if h.ejected {
			continue
		}
		members = append(members, Member[*target]{Env: e.Env, Zone: e.Zone, Item: &target{ep: e, h: h}})
	}
	p := NewPool(w.service, w.t.policy, members, PoolStats(w.t.statsOf()))
	p.policyFn = w.t.policyFn
	w.pool.Store(p)
}

// succeeded records a request that got a response from h.
func (w *watch) succeeded(h *instHealth) {
	if h.fails.Load() != 0 || h.level.Load() != 0 {
		h.fails.Store(0)
		h.level.Store(0)
	}
}

// connFailed records a connection failure to h and ejects it at the
// threshold.
func (w *watch) connFailed(h *instHealth) {
	st := w.t.statsOf().service(w.service)
	st.connFailures.Add(1)
	if w.t.hc.Disabled {
		return
	}
	if int(h.fails.Add(1)) < w.t.hc.Failures {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.ejected || w.closed || w.health[h.key] != h {
		return
	}
	h.ejected = true
	st.ejections.Add(1)
	w.rebuildLocked()
	w.scheduleProbeLocked(h)
}

func (w *watch) scheduleProbeLocked(h *instHealth) {
	d := w.t.hc.Ejection << min(h.level.Add(1)-1, 16)
	if d > w.t.hc.MaxEjection || d <= 0 {
		d = w.t.hc.MaxEjection
	}
	h.timer = time.AfterFunc(d, func() { w.probe(h) })
}

// probe re-checks an ejected instance with a TCP connect: readmitted when
// it answers, else ejected for longer.
func (w *watch) probe(h *instHealth) {
	ctx, cancel := context.WithTimeout(w.t.ctx, w.t.hc.ProbeTimeout)
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", h.key)
	cancel()
	if err == nil {
		c.Close()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.health[h.key] != h || !h.ejected {
		return
	}
	st := w.t.statsOf().service(w.service)
	if err != nil {
		st.ejections.Add(1)
		w.scheduleProbeLocked(h)
		return
	}
	h.ejected = false
	h.fails.Store(int32(w.t.hc.Failures - 1)) // on probation: one failure ejects again
	st.readmissions.Add(1)
	w.rebuildLocked()
}

func (w *watch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, h := range w.health {
		if h.timer != nil {
			h.timer.Stop()
		}
	}
}

// isConnFailure reports whether err says that the connection to the
// instance could not be made, so that nothing of the request was sent.
func isConnFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// idempotent reports whether req may be sent twice (RFC 9110 9.2.2, or an
// Idempotency-Key header).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// replayable reports whether req's body can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}
