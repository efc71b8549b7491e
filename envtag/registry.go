package envtag

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// Registry is where instances of services are found, with their
// environment labels. Implementations: [StaticRegistry], [FileRegistry],
// and the etcd v3 registry in the envtag/etcd module.
type Registry interface {
	// Watch delivers the complete set of service's endpoints to update:
	// the current set before Watch returns, then every changed set until
	// ctx is done. Calls to update are never concurrent for one Watch, and
	// update must not block for long or call back into the registry
	// synchronously. An unknown service delivers an empty set (which
	// fails every request routed to it); an error means the registry
	// could not be read at all.
	Watch(ctx context.Context, service string, update func([]Endpoint)) error
}

// StaticRegistry is an in-memory [Registry] whose content is replaced with
// [StaticRegistry.Set] or [StaticRegistry.Replace]; watchers see every
// change. The zero value is empty and ready to use.
type StaticRegistry struct {
	mu   sync.Mutex
	set  map[string][]Endpoint
	subs map[string]map[*subscriber]struct{}
}

// NewStaticRegistry returns a registry holding services (service name ->
// endpoints), validated like [StaticRegistry.Replace].
func NewStaticRegistry(services map[string][]Endpoint) (*StaticRegistry, error) {
	r := new(StaticRegistry)
	if err := r.Replace(services); err != nil {
		return nil, err
	}
	return r, nil
}

func validateSet(service string, eps []Endpoint) error {
	if service == "" {
		return fmt.Errorf("envtag: registry: empty service name")
	}
	for _, e := range eps {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("envtag: registry: service %q: %w", service, err)
		}
	}
	if err := CheckConflicts(eps); err != nil {
		return fmt.Errorf("envtag: registry: service %q: %w (update refused, the previous set stays in force)", service, err)
	}
	return nil
}

// Set replaces the endpoints of one service (nil or empty removes it).
// A malformed endpoint, or an address listed under two environments
// (errors.Is [ErrConflict]), rejects the whole update and keeps the old
// set.
func (r *StaticRegistry) Set(service string, eps []Endpoint) error {
	if err := validateSet(service, eps); err != nil {
		return err
	}
	eps = slices.Clone(eps)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = map[string][]Endpoint{}
	}
	if len(eps) == 0 {
		delete(r.set, service)
	} else {
		r.set[service] = eps
	}
	r.notifyLocked(service)
	return nil
}

// Replace replaces the whole content. A malformed endpoint or an address
// listed under two environments (errors.Is [ErrConflict]) anywhere rejects
// the update and keeps the old content.
func (r *StaticRegistry) Replace(services map[string][]Endpoint) error {
	next := make(map[string][]Endpoint, len(services))
	for s, eps := range services {
		if err := validateSet(s, eps); err != nil {
			return err
		}
		if len(eps) > 0 {
			next[s] = slices.Clone(eps)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.set
	r.set = next
	for s := range r.subs {
		if !slices.Equal(old[s], next[s]) {
			r.notifyLocked(s)
		}
	}
	return nil
}

// Endpoints returns a copy of service's current endpoints.
func (r *StaticRegistry) Endpoints(service string) []Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.set[service])
}

func (r *StaticRegistry) notifyLocked(service string) {
	for s := range r.subs[service] {
		s.offer(slices.Clone(r.set[service]))
	}
}

// Watch implements [Registry].
func (r *StaticRegistry) Watch(ctx context.Context, service string, update func([]Endpoint)) error {
	if service == "" {
		return fmt.Errorf("envtag: registry: empty service name")
	}
	s := &subscriber{kick: make(chan struct{}, 1)}
	r.mu.Lock()
	cur := slices.Clone(r.set[service])
	if r.subs == nil {
		r.subs = map[string]map[*subscriber]struct{}{}
	}
	if r.subs[service] == nil {
		r.subs[service] = map[*subscriber]struct{}{}
	}
	r.subs[service][s] = struct{}{}
	r.mu.Unlock()
	update(cur)
	go func() {
		defer func() {
			r.mu.Lock()
			delete(r.subs[service], s)
			if len(r.subs[service]) == 0 {
				delete(r.subs, service)
			}
			r.mu.Unlock()
		}()
		s.run(ctx, update)
	}()
	return nil
}

// subscriber delivers the latest offered set, coalescing bursts, from its
// own goroutine so that a slow watcher never blocks the registry.
type subscriber struct {
	mu     sync.Mutex
	latest []Endpoint
	dirty  bool
	kick   chan struct{}
}

func (s *subscriber) offer(eps []Endpoint) {
	s.mu.Lock()
	s.latest, s.dirty = eps, true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(ctx context.Context, update func([]Endpoint)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.mu.Lock()
		eps, dirty := s.latest, s.dirty
		s.dirty = false
		s.mu.Unlock()
		if dirty && ctx.Err() == nil {
			update(eps)
		}
	}
}
