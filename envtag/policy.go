package envtag

import (
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/shadowlane/shadowlane/propagation"
)

// Config is the routing configuration in the shape of the YAML/JSON config
// file (and of the gRPC balancer's service config). The zero Config is the
// default rule: a tagged request goes to its own environment where the
// service has one, else to trunk.
type Config struct {
	// Strict makes every service fail a tagged request whose environment
	// has no ready instance, instead of falling back.
	Strict bool `json:"strict,omitempty"`
	// StrictServices makes only the listed services strict.
	StrictServices []string `json:"strictServices,omitempty"`
	// Fallback lists, per tag, the environments tried in order when the
	// tag's own environment has no ready instance, before trunk. The key
	// "*" applies to every tag without an entry of its own. Trunk is always
	// the last resort of a non-strict service and needs no entry.
	Fallback map[string][]string `json:"fallback,omitempty"`
}

// AnyTag is the [Config.Fallback] key that applies to every tag.
const AnyTag = "*"

// Policy is a validated, immutable [Config]. The nil *Policy is the default
// rule (non-strict, no configured fallbacks). Safe for concurrent use.
type Policy struct {
	strict    bool
	strictSvc map[string]bool
	fallback  map[string][]string
}

// NewPolicy validates c and returns its Policy. Every tag and fallback
// environment must satisfy [propagation.ValidID] (fallback keys may also be
// [AnyTag]); a tag may not fall back to itself.
func NewPolicy(c Config) (*Policy, error) {
	p := &Policy{strict: c.Strict}
	for _, s := range c.StrictServices {
		if s == "" {
			return nil, fmt.Errorf("envtag: strictServices: empty service name")
		}
		if p.strictSvc == nil {
			p.strictSvc = map[string]bool{}
		}
		p.strictSvc[s] = true
	}
	keys := make([]string, 0, len(c.Fallback))
	for k := range c.Fallback {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != AnyTag && !propagation.ValidID(k) {
			return nil, fmt.Errorf("envtag: fallback: tag %q: %w", k, propagation.ErrMalformed)
		}
		to := c.Fallback[k]
		for _, e := range to {
			if !propagation.ValidID(e) {
				return nil, fmt.Errorf("envtag: fallback %q: environment %q: %w (trunk is implicit, leave it out)", k, e, propagation.ErrMalformed)
			}
			if e == k {
				return nil, fmt.Errorf("envtag: fallback %q: lists itself", k)
			}
		}
		if p.fallback == nil {
			p.fallback = map[string][]string{}
		}
		p.fallback[k] = append([]string(nil), to...)
	}
	return p, nil
}

// Strict reports whether service fails tagged requests instead of falling
// back.
func (p *Policy) Strict(service string) bool {
	if p == nil {
		return false
	}
	return p.strict || (p.strictSvc != nil && p.strictSvc[service])
}

// Fallbacks returns the environments tried for tag, in order, after the
// tag's own environment and before trunk. The result must not be modified.
func (p *Policy) Fallbacks(tag string) []string {
	if p == nil || p.fallback == nil || tag == "" {
		return nil
	}
	if f, ok := p.fallback[tag]; ok {
		return f
	}
	return p.fallback[AnyTag]
}

// Chain returns every environment a request tagged tag may be served by,
// in order of preference, for service: [Trunk] only for an untagged
// request; the tag alone under strict mode; else the tag, its fallbacks
// and trunk.
func (p *Policy) Chain(service, tag string) []string {
	if tag == "" {
		return []string{Trunk}
	}
	if p.Strict(service) {
		return []string{tag}
	}
	out := []string{tag}
	for _, f := range p.Fallbacks(tag) {
		if f != tag {
			out = append(out, f)
		}
	}
	return append(out, Trunk)
}

var defaultPolicy atomic.Pointer[Policy]

// DefaultPolicy returns the policy used where none is given (nil until
// [SetDefaultPolicy] is called: the default rule).
func DefaultPolicy() *Policy { return defaultPolicy.Load() }

// SetDefaultPolicy replaces the default policy; routing components that use
// the default see the change at their next pick. shadowlane.Init calls it.
func SetDefaultPolicy(p *Policy) { defaultPolicy.Store(p) }
