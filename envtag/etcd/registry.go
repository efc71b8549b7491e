package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shadowlane/shadowlane/envtag"
)

// DefaultPrefix is the key prefix under which instances are registered:
// <prefix><service>/<instance id> = {"addr":"10.0.0.7:8080","env":"proj-42"}.
const DefaultPrefix = "/shadowlane/services/"

// Registry is an envtag.Registry backed by etcd v3. It is safe for
// concurrent use; it does not own the client.
type Registry struct {
	cli         *clientv3.Client
	prefix      string
	retry       time.Duration
	readTimeout time.Duration
	deleteGrace time.Duration
	onError     func(error)
}

// Option configures a [Registry].
type Option func(*Registry)

// WithPrefix sets the key prefix (default [DefaultPrefix]); it should end
// in "/".
func WithPrefix(p string) Option { return func(r *Registry) { r.prefix = p } }

// WithRetry sets the pause before a broken watch is re-established, and
// before a lost registration is written again (default 500 ms).
func WithRetry(d time.Duration) Option { return func(r *Registry) { r.retry = d } }

// WithReadTimeout bounds the first read of [Registry.Watch] (default 5 s):
// an etcd that cannot be reached makes Watch fail instead of hanging.
func WithReadTimeout(d time.Duration) Option { return func(r *Registry) { r.readTimeout = d } }

// WithDeleteGrace holds the removal of an instance whose key went away
// (deleted, or its lease expired) for d before watchers drop it; a key
// written again within d never leaves the set (default 1 s; 0 drops at
// once). After an etcd restart longer than the leases' TTL, the restored
// old leases expire before the registering clients (reconnecting with
// gRPC's backoff) have written their keys again under new leases: without
// the grace a watcher sees every instance leave and come back a moment
// later, and tagged calls fail with envtag.ErrNoLane in between. Only
// removals wait; new and changed keys apply at once, so a label change
// never routes by the old label for longer.
func WithDeleteGrace(d time.Duration) Option { return func(r *Registry) { r.deleteGrace = max(d, 0) } }

// WithOnError receives the problems the registry works around without
// failing: an address claimed under two environments (withheld, see
// [Registry.Watch]), a broken watch, a lost registration being written
// again. Default: dropped.
func WithOnError(f func(error)) Option { return func(r *Registry) { r.onError = f } }

// New returns a registry reading and writing through cli.
func New(cli *clientv3.Client, opts ...Option) *Registry {
	r := &Registry{cli: cli, prefix: DefaultPrefix, retry: 500 * time.Millisecond, readTimeout: 5 * time.Second, deleteGrace: time.Second}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ envtag.Registry = (*Registry)(nil)

func (r *Registry) report(err error) {
	if r.onError != nil {
		r.onError(err)
	}
}

func (r *Registry) servicePrefix(service string) string { return r.prefix + service + "/" }

// Register writes the instance id of service under a lease of ttl that is
// kept alive until ctx is done or the returned function is called (which
// deletes the key at once). Use envtag.Self for ep.Env so the instance is
// registered in the environment it runs in.
//
// A registration whose lease is lost while the instance lives (the lease
// expired during a network partition or a long etcd outage, or was revoked
// by someone else) is written again under a new lease, retrying every
// [WithRetry] interval until ctx is done: a living instance does not
// silently vanish from routing.
func (r *Registry) Register(ctx context.Context, service, id string, ep envtag.Endpoint, ttl time.Duration) (unregister func(context.Context) error, err error) {
	if service == "" || strings.Contains(service, "/") || id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("envtag/etcd: register: bad service %q or instance id %q", service, id)
	}
	if err := ep.Validate(); err != nil {
		return nil, fmt.Errorf("envtag/etcd: register %s/%s: %w", service, id, err)
	}
	secs := int64(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	val, _ := json.Marshal(ep)
	key := r.servicePrefix(service) + id
	kctx, cancel := context.WithCancel(ctx)
	reg := &registration{r: r, key: key, val: string(val), secs: secs}
	ka, err := reg.put(kctx)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.keep(kctx, ka)
	}()
	return func(ctx context.Context) error {
		cancel()
		<-done
		reg.mu.Lock()
		lease := reg.lease
		reg.mu.Unlock()
		if lease == clientv3.NoLease {
			return nil
		}
		_, err := r.cli.Revoke(ctx, lease)
		return err
	}, nil
}

type registration struct {
	r    *Registry
	key  string
	val  string
	secs int64

	mu    sync.Mutex
	lease clientv3.LeaseID
}

// put grants a lease, writes the key under it and starts keeping it alive.
func (g *registration) put(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	lease, err := g.r.cli.Grant(ctx, g.secs)
	if err != nil {
		return nil, fmt.Errorf("envtag/etcd: register %s: lease: %w", g.key, err)
	}
	revoke := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		g.r.cli.Revoke(rctx, lease.ID)
		cancel()
	}
	if _, err := g.r.cli.Put(ctx, g.key, g.val, clientv3.WithLease(lease.ID)); err != nil {
		revoke()
		return nil, fmt.Errorf("envtag/etcd: register %s: %w", g.key, err)
	}
	ka, err := g.r.cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		revoke()
		return nil, fmt.Errorf("envtag/etcd: register %s: keepalive: %w", g.key, err)
	}
	g.mu.Lock()
	g.lease = lease.ID
	g.mu.Unlock()
	return ka, nil
}

// keep drains keepalive responses; when the channel closes while ctx is
// alive the lease is gone, and the key is written again.
func (g *registration) keep(ctx context.Context, ka <-chan *clientv3.LeaseKeepAliveResponse) {
	for {
		for range ka {
		}
		if ctx.Err() != nil {
			return
		}
		g.r.report(fmt.Errorf("envtag/etcd: register %s: lease lost, registering again", g.key))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(g.r.retry):
			}
			var err error
			if ka, err = g.put(ctx); err == nil {
				break
			}
			g.r.report(err)
		}
	}
}

// Watch implements envtag.Registry: it reads service's instances, delivers
// them, then follows changes with an etcd watch (re-reading everything
// after a broken or compacted watch; during the gap the last set stays in
// force). Values that are not a valid endpoint are left out: an instance
// with an unreadable label gets no traffic.
//
// An address claimed by keys with two different environment labels (an
// operator's typo, or an instance that came back under a new label while
// its old key still lives) is withheld from the set — no traffic at all,
// since either label may be the wrong one and untagged traffic must never
// reach a project instance — until only one label claims it; the rest of
// the set follows as usual, and [WithOnError] receives an error (errors.Is
// envtag.ErrConflict) naming the address and the keys. Keys claiming one
// address under the same label are delivered once.
func (r *Registry) Watch(ctx context.Context, service string, update func([]envtag.Endpoint)) error {
	if service == "" || strings.Contains(service, "/") {
		return fmt.Errorf("envtag/etcd: watch: bad service name %q", service)
	}
	prefix := r.servicePrefix(service)
	rctx, cancel := context.WithTimeout(ctx, r.readTimeout)
	set, rev, err := r.load(rctx, prefix)
	cancel()
	if err != nil {
		return err
	}
	r.deliver(set, update)
	go r.follow(ctx, prefix, set, rev, update)
	return nil
}

type endpointSet map[string]envtag.Endpoint

func (s endpointSet) apply(key string, val []byte) {
	var ep envtag.Endpoint
	if json.Unmarshal(val, &ep) != nil || ep.Validate() != nil {
		delete(s, key)
		return
	}
	s[key] = ep
}

// list returns the endpoints sorted by key, one per address, leaving out
// the addresses claimed under two labels (reported as conflicts).
func (s endpointSet) list() ([]envtag.Endpoint, []error) {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	first := map[string]string{} // address key -> first key claiming it
	bad := map[string]bool{}
	var errs []error
	for _, k := range keys {
		a := envtag.AddrKey(s[k].Addr)
		f, ok := first[a]
		if !ok {
			first[a] = k
			continue
		}
		if s[f].Env != s[k].Env && !bad[a] {
			bad[a] = true
			errs = append(errs, fmt.Errorf("envtag/etcd: keys %s and %s: %w (address withheld until one claim goes)",
				f, k, &envtag.ConflictError{Addr: s[f].Addr, Envs: [2]string{s[f].Env, s[k].Env}}))
		}
	}
	out := make([]envtag.Endpoint, 0, len(keys))
	for _, k := range keys {
		a := envtag.AddrKey(s[k].Addr)
		if !bad[a] && first[a] == k {
			out = append(out, s[k])
		}
	}
	return out, errs
}

func (r *Registry) deliver(set endpointSet, update func([]envtag.Endpoint)) {
	eps, errs := set.list()
	for _, err := range errs {
		r.report(err)
	}
	update(eps)
}

func (r *Registry) load(ctx context.Context, prefix string) (endpointSet, int64, error) {
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("envtag/etcd: read %s: %w", prefix, err)
	}
	set := endpointSet{}
	for _, kv := range resp.Kvs {
		set.apply(string(kv.Key), kv.Value)
	}
	return set, resp.Header.Revision, nil
}

// follower is one Watch's state: the keys etcd holds and the keys gone
// within the delete grace (still delivered).
type follower struct {
	r      *Registry
	set    endpointSet
	held   map[string]heldKey
	update func([]envtag.Endpoint)
}

// heldKey is a removed key kept in the set until its grace ends.
type heldKey struct {
	ep    envtag.Endpoint
	until time.Time
}

// remove takes key out of the set, holding it for the delete grace.
func (f *follower) remove(key string) {
	ep, ok := f.set[key]
	if !ok {
		return
	}
	delete(f.set, key)
	if f.r.deleteGrace > 0 {
		f.held[key] = heldKey{ep: ep, until: time.Now().Add(f.r.deleteGrace)}
	}
}

// put applies a written key; a held key that comes back is no longer held.
func (f *follower) put(key string, val []byte) {
	delete(f.held, key)
	f.set.apply(key, val)
}

// replace takes a fresh read: keys it lacks are removed (held).
func (f *follower) replace(s endpointSet) {
	for k := range f.set {
		if _, ok := s[k]; !ok {
			f.remove(k)
		}
	}
	for k, ep := range s {
		delete(f.held, k)
		f.set[k] = ep
	}
}

// expire drops the held keys whose grace ended and returns whether any
// did, and when the next one ends (zero: none held).
func (f *follower) expire(now time.Time) (changed bool, next time.Time) {
	for k, h := range f.held {
		if !now.Before(h.until) {
			delete(f.held, k)
			changed = true
		} else if next.IsZero() || h.until.Before(next) {
			next = h.until
		}
	}
	return changed, next
}

// deliver hands the set and the held keys to the watcher.
func (f *follower) deliver() {
	all := make(endpointSet, len(f.set)+len(f.held))
	for k, h := range f.held {
		all[k] = h.ep
	}
	for k, ep := range f.set {
		all[k] = ep
	}
	f.r.deliver(all, f.update)
}

// timer returns a channel that fires when the next held key's grace ends
// (nil: none held).
func (f *follower) timer() (<-chan time.Time, func()) {
	_, next := f.expire(time.Now())
	if next.IsZero() {
		return nil, func() {}
	}
	t := time.NewTimer(time.Until(next))
	return t.C, func() { t.Stop() }
}

func (r *Registry) follow(ctx context.Context, prefix string, set endpointSet, rev int64, update func([]envtag.Endpoint)) {
	f := &follower{r: r, set: set, held: map[string]heldKey{}, update: update}
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := r.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		rev = f.watch(ctx, prefix, wch, rev)
		cancel() // the watch broke (compaction, lost leader, closed client)
		// Start over from a fresh read; until it succeeds the last set
		// stays in force.
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.retry):
			}
			if changed, _ := f.expire(time.Now()); changed {
				f.deliver()
			}
			rctx, rcancel := context.WithTimeout(ctx, r.readTimeout)
			s, rv, err := r.load(rctx, prefix)
			rcancel()
			if err == nil {
				f.replace(s)
				rev = rv
				if ctx.Err() == nil {
					f.deliver()
				}
				break
			}
			r.report(err)
		}
	}
}

// watch follows wch until it breaks and returns the last revision seen.
func (f *follower) watch(ctx context.Context, prefix string, wch clientv3.WatchChan, rev int64) int64 {
	for {
		tc, stop := f.timer()
		select {
		case <-tc:
			stop()
			if changed, _ := f.expire(time.Now()); changed && ctx.Err() == nil {
				f.deliver()
			}
			continue
		case resp, ok := <-wch:
			stop()
			if !ok {
				return rev
			}
			if err := resp.Err(); err != nil {
				f.r.report(fmt.Errorf("envtag/etcd: watch %s: %w (reading again)", prefix, err))
				return rev
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					f.remove(string(ev.Kv.Key))
				} else {
					f.put(string(ev.Kv.Key), ev.Kv.Value)
				}
			}
			rev = resp.Header.Revision
			if len(resp.Events) > 0 && ctx.Err() == nil {
				f.deliver()
			}
		}
	}
}
