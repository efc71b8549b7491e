package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
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
	cli    *clientv3.Client
	prefix string
	retry  time.Duration
}

// Option configures a [Registry].
type Option func(*Registry)

// WithPrefix sets the key prefix (default [DefaultPrefix]); it should end
// in "/".
func WithPrefix(p string) Option { return func(r *Registry) { r.prefix = p } }

// WithRetry sets the pause before a broken watch is re-established
// (default 500 ms).
func WithRetry(d time.Duration) Option { return func(r *Registry) { r.retry = d } }

// New returns a registry reading and writing through cli.
func New(cli *clientv3.Client, opts ...Option) *Registry {
	r := &Registry{cli: cli, prefix: DefaultPrefix, retry: 500 * time.Millisecond}
	for _, o := range opts {
		o(r)
	}
	return r
}

var _ envtag.Registry = (*Registry)(nil)

func (r *Registry) servicePrefix(service string) string { return r.prefix + service + "/" }

// Register writes the instance id of service under a lease of ttl that is
// kept alive until ctx is done or the returned function is called (which
// deletes the key at once). Use envtag.Self for ep.Env so the instance is
// registered in the environment it runs in.
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
	lease, err := r.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("envtag/etcd: register %s/%s: lease: %w", service, id, err)
	}
	val, _ := json.Marshal(ep)
	key := r.servicePrefix(service) + id
	if _, err := r.cli.Put(ctx, key, string(val), clientv3.WithLease(lease.ID)); err != nil {
		return nil, fmt.Errorf("envtag/etcd: register %s: %w", key, err)
	}
	kctx, cancel := context.WithCancel(ctx)
	ka, err := r.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("envtag/etcd: register %s: keepalive: %w", key, err)
	}
	go func() {
		for range ka { // drain keepalive responses until cancelled
		}
	}()
	return func(ctx context.Context) error {
		cancel()
		_, err := r.cli.Revoke(ctx, lease.ID)
		return err
	}, nil
}

// Watch implements envtag.Registry: it reads service's instances, delivers
// them, then follows changes with an etcd watch (re-reading everything
// after a broken or compacted watch). Values that are not a valid endpoint
// are left out: an instance with an unreadable label gets no traffic.
func (r *Registry) Watch(ctx context.Context, service string, update func([]envtag.Endpoint)) error {
	if service == "" || strings.Contains(service, "/") {
		return fmt.Errorf("envtag/etcd: watch: bad service name %q", service)
	}
	prefix := r.servicePrefix(service)
	set, rev, err := r.load(ctx, prefix)
	if err != nil {
		return err
	}
	update(set.list())
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

func (s endpointSet) list() []envtag.Endpoint {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]envtag.Endpoint, len(keys))
	for i, k := range keys {
		out[i] = s[k]
	}
	return out
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

func (r *Registry) follow(ctx context.Context, prefix string, set endpointSet, rev int64, update func([]envtag.Endpoint)) {
	for ctx.Err() == nil {
		wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					delete(set, string(ev.Kv.Key))
				} else {
					set.apply(string(ev.Kv.Key), ev.Kv.Value)
				}
			}
			rev = resp.Header.Revision
			if len(resp.Events) > 0 && ctx.Err() == nil {
				update(set.list())
			}
		}
		// The watch broke (compaction, lost leader, closed client): start
		// over from a fresh read.
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.retry):
			}
			s, rv, err := r.load(ctx, prefix)
			if err == nil {
				set, rev = s, rv
				update(set.list())
				break
			}
		}
	}
}
