package envtag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Transport is an http.RoundTripper that treats the host of each request
// URL as a service name ("http://orders/v1/items" -> service "orders"),
// resolves it to labelled endpoints from a [Registry] and sends the request
// to the instance the selection rule picks for the request context's tag
// (see [Pool]). Endpoint sets are watched, so instances coming and going
// change routing without restarts. The Host header keeps the service name.
//
// The transport is health-aware (see [HealthConfig]): instances whose
// connections fail are ejected and re-probed, and a request that failed to
// connect is retried on another instance of the same lane; it never
// crosses to another environment except by the selection rule itself.
//
// A request that cannot be routed fails with a [*RouteError] (errors.Is
// [ErrNoLane]) before anything is sent. Close stops the watches.
type Transport struct {
	base     http.RoundTripper
	reg      Registry
	policy   *Policy
	policyFn func() *Policy
	stats    *Stats          // nil: DefaultStats at each use
	services map[string]bool // nil: every host
	health   HealthConfig    // as given
	hc       HealthConfig    // with defaults

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	watches map[string]*watch
}

// TransportOption configures a [Transport].
type TransportOption func(*Transport)

// WithBase sets the RoundTripper that sends the routed requests
// (default http.DefaultTransport).
func WithBase(rt http.RoundTripper) TransportOption { return func(t *Transport) { t.base = rt } }

// WithStats makes the transport count its picks and passive health in st
// (a Runtime's RoutingStats) instead of [DefaultStats].
func WithStats(st *Stats) TransportOption { return func(t *Transport) { t.stats = st } }

// statsOf is the transport's counters.
func (t *Transport) statsOf() *Stats {
	if t.stats != nil {
		return t.stats
	}
	return DefaultStats()
}

// WithPolicy sets the routing policy (default: [DefaultPolicy] at each
// request).
func WithPolicy(p *Policy) TransportOption { return func(t *Transport) { t.policy = p } }

// WithPolicyFunc makes the transport read its routing policy from f at
// each request (when no [WithPolicy] is given), so that a policy that is
// reconfigured at run time applies at once; shadowlane.Runtime.RoutingPolicy
// is such a function: one runtime's routing config, reloads included.
func WithPolicyFunc(f func() *Policy) TransportOption {
	return func(t *Transport) { t.policyFn = f }
}

// WithServices restricts routing to the named hosts; requests to other
// hosts go to the base transport unchanged. Without it every host is
// treated as a service name, and one the registry does not know fails.
func WithServices(names ...string) TransportOption {
	return func(t *Transport) {
		t.services = map[string]bool{}
		for _, n := range names {
			t.services[n] = true
		}
	}
}

// NewTransport returns a Transport resolving services in reg.
func NewTransport(reg Registry, opts ...TransportOption) *Transport {
	t := &Transport{reg: reg, base: http.DefaultTransport, watches: map[string]*watch{}}
	for _, o := range opts {
		o(t)
	}
	t.hc = t.health.withDefaults()
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Close stops watching the registry and re-probing instances. Requests
// after Close fail.
func (t *Transport) Close() error {
	t.cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.watches {
		w.close()
	}
	return nil
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	service := req.URL.Hostname()
	if t.services != nil && !t.services[service] {
		return t.base.RoundTrip(req)
	}
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	w, err := t.watch(req.Context(), service)
	if err != nil {
		return fail(err)
	}
	pool := w.pool.Load()
	mark := propagation.FromContext(req.Context())
	tg, env, err := pool.PickEnv(mark)
	if err != nil {
		return fail(err)
	}
	grace := pool.currentPolicy().ConnectGrace()
	resp, err := t.send(req, req.Body, tg, grace)
	if err == nil {
		w.succeeded(tg.h)
		return resp, nil
	}
	connFail := isConnFailure(err) && req.Context().Err() == nil
	if connFail {
		w.connFailed(tg.h)
	}
	if t.hc.Retries == 0 || req.Context().Err() != nil || !replayable(req) || !(connFail || idempotent(req)) {
		return nil, err
	}
	// Retry on other instances of the same lane only.
	var tried [4]*instHealth
	seen := append(tried[:0], tg.h)
	for i := 0; i < t.hc.Retries; i++ {
		next, ok := w.pool.Load().AnotherFor(mark, env, func(c *target) bool {
			for _, h := range seen {
				if h == c.h {
					return true
				}
			}
			return false
		})
		if !ok {
			break
		}
		body := req.Body
		if req.Body != nil && req.Body != http.NoBody {
			b, gerr := req.GetBody()
			if gerr != nil {
				break
			}
			body = b
		}
		t.statsOf().service(service).retries.Add(1)
		seen = append(seen, next.h)
		resp, err = t.send(req, body, next, grace)
		if err == nil {
			w.succeeded(next.h)
			return resp, nil
		}
		connFail = isConnFailure(err) && req.Context().Err() == nil
		if connFail {
			w.connFailed(next.h)
		}
		if req.Context().Err() != nil || !(connFail || idempotent(req)) {
			break
		}
	}
	return nil, err
}

// send sends a copy of req with body to tg. A TCP connect to the instance
// that takes longer than the policy's connect grace is abandoned: the
// attempt fails with an error that [isConnFailure] recognises (nothing was
// sent), so the instance is counted as failing and the request may be
// retried on another instance of its lane.
func (t *Transport) send(req *http.Request, body io.ReadCloser, tg *target, grace time.Duration) (*http.Response, error) {
	out := new(http.Request)
	*out = *req
	out.Body = body
	u := *req.URL
	u.Host = tg.ep.Addr
	out.URL = &u
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	if grace <= 0 {
		return t.base.RoundTrip(out)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	g := &connectGuard{cancel: cancel, grace: grace, addr: tg.ep.Addr}
	out = out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectStart: g.start,
		ConnectDone:  g.done,
	}))
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		cancel(nil)
		if cause := context.Cause(ctx); errors.Is(cause, errConnectGrace) && req.Context().Err() == nil {
			return nil, cause
		}
		return nil, err
	}
	g.stop()
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

var errConnectGrace = errors.New("envtag: connect grace exceeded")

// connectGuard abandons an attempt whose TCP connect outlasts the grace.
type connectGuard struct {
	cancel  context.CancelCauseFunc
	grace   time.Duration
	addr    string
	mu      sync.Mutex
	timer   *time.Timer
	open    int  // connects in progress (several with dual-stack dialing)
	stopped bool // the attempt got its response: nothing to abandon
}

func (g *connectGuard) start(network, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open++
	if g.timer == nil && !g.stopped {
		g.timer = time.AfterFunc(g.grace, g.expire)
	}
}

// expire abandons the attempt if its connect is still in progress when
// the grace is up. The timer's function runs on its own goroutine, maybe
// after the connect completed (on a busy machine, long after): a connect
// that completed, or an attempt that got its response, is left alone,
// since its request may already have been sent, and calling it a
// connection failure (nothing sent) would allow a retry of a request that
// may have taken effect.
func (g *connectGuard) expire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open <= 0 || g.stopped {
		return
	}
	g.cancel(&net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s did not accept the connection within %v (%w)", errConnectGrace, g.addr, g.grace, ErrNoLane)})
}

func (g *connectGuard) done(network, addr string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open--; g.open <= 0 && g.timer != nil {
		g.timer.Stop()
	}
}

func (g *connectGuard) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	if g.timer != nil {
		g.timer.Stop()
	}
}

// cancelOnClose releases an attempt's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// Pool returns the current routing snapshot of service (ejected instances
// left out), starting to watch it on first use.
func (t *Transport) Pool(ctx context.Context, service string) (*Pool[Endpoint], error) {
	w, err := t.watch(ctx, service)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	members := make([]Member[Endpoint], 0, len(w.eps))
	for _, e := range w.eps {
		if h := w.health[AddrKey(e.Addr)]; h == nil || !h.ejected {
			members = append(members, Member[Endpoint]{Env: e.Env, Zone: e.Zone, Item: e})
		}
	}
	w.mu.Unlock()
	p := NewPool(service, t.policy, members, PoolStats(t.statsOf()))
	p.policyFn = t.policyFn
	return p, nil
}

func (t *Transport) watch(ctx context.Context, service string) (*watch, error) {
	t.mu.Lock()
	w := t.watches[service]
	if w == nil {
		if err := t.ctx.Err(); err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("envtag: transport closed")
		}
		w = &watch{t: t, service: service, done: make(chan struct{})}
		t.watches[service] = w
		t.mu.Unlock()
		t.start(service, w)
	} else {
		t.mu.Unlock()
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if w.err != nil {
		return nil, w.err
	}
	return w, nil
}

func (t *Transport) start(service string, w *watch) {
	var once sync.Once
	err := t.reg.Watch(t.ctx, service, func(eps []Endpoint) {
		w.setEndpoints(eps)
		once.Do(func() { close(w.done) })
	})
	if err != nil {
		t.mu.Lock()
		delete(t.watches, service) // the next request tries again
		t.mu.Unlock()
		once.Do(func() {
			w.err = fmt.Errorf("envtag: watch service %q: %w", service, err)
			close(w.done)
		})
		return
	}
	once.Do(func() { // a registry that broke the contract: fail closed
		w.setEndpoints(nil)
		close(w.done)
	})
}
