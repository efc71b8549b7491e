package envtag

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/propagation"
)

// Transport is an http.RoundTripper that treats the host of each request
// URL as a service name ("http://orders/v1/items" -> service "orders"),
// resolves it to labelled endpoints from a [Registry] and sends the request
// to the instance the selection rule picks for the request context's tag
// (see [Pool]). Endpoint sets are watched, so instances coming and going
// change routing without restarts. The Host header keeps the service name.
//
// A request that cannot be routed fails with a [*RouteError] (errors.Is
// [ErrNoLane]) before anything is sent. Close stops the watches.
type Transport struct {
	base     http.RoundTripper
	reg      Registry
	policy   *Policy
	policyFn func() *Policy
	services map[string]bool // nil: every host

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	watches map[string]*watch
}

type watch struct {
	done chan struct{} // closed once the first set arrived (or err is set)
	err  error
	pool atomic.Pointer[Pool[Endpoint]]
}

// TransportOption configures a [Transport].
type TransportOption func(*Transport)

// WithBase sets the RoundTripper that sends the routed requests
// (default http.DefaultTransport).
func WithBase(rt http.RoundTripper) TransportOption { return func(t *Transport) { t.base = rt } }

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
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Close stops watching the registry. Requests after Close fail.
func (t *Transport) Close() error {
	t.cancel()
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
	pool, err := t.pool(req.Context(), service)
	if err != nil {
		return fail(err)
	}
	ep, err := pool.Pick(propagation.FromContext(req.Context()))
	if err != nil {
		return fail(err)
	}
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Host = ep.Addr
	out.URL = &u
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	return t.base.RoundTrip(out)
}

// Pool returns the current routing snapshot of service, starting to watch
// it on first use.
func (t *Transport) Pool(ctx context.Context, service string) (*Pool[Endpoint], error) {
	return t.pool(ctx, service)
}

func (t *Transport) pool(ctx context.Context, service string) (*Pool[Endpoint], error) {
	t.mu.Lock()
	w := t.watches[service]
	if w == nil {
		if err := t.ctx.Err(); err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("envtag: transport closed")
		}
		w = &watch{done: make(chan struct{})}
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
	return w.pool.Load(), nil
}

func (t *Transport) start(service string, w *watch) {
	var once sync.Once
	err := t.reg.Watch(t.ctx, service, func(eps []Endpoint) {
		members := make([]Member[Endpoint], len(eps))
		for i, e := range eps {
			members[i] = Member[Endpoint]{Env: e.Env, Item: e}
		}
		w.pool.Store(t.newPool(service, members))
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
		w.pool.Store(t.newPool(service, nil))
		close(w.done)
	})
}

func (t *Transport) newPool(service string, members []Member[Endpoint]) *Pool[Endpoint] {
	p := NewPool(service, t.policy, members)
	p.policyFn = t.policyFn
	return p
}
