package envtag

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shadowlane/shadowlane/internal/installed"
	"github.com/shadowlane/shadowlane/propagation"
)

// Config is the routing rule: which instance of a downstream serves a
// request tagged with an environment. It is the rule part of the
// "routing:" section of the shadowlane config file (YAML,
// shadowlane.RoutingConfig embeds it) and of the gRPC balancer's service
// config (JSON); the field names are the same in both.
//
// The zero Config is the default rule: a tagged request goes to its own
// environment where the service has one, else to trunk; an untagged
// request only ever goes to trunk.
type Config struct {
	// Strict makes every service fail a tagged request whose environment
	// has no ready instance, instead of falling back.
	Strict bool `json:"strict,omitempty" yaml:"strict"`
	// StrictServices makes only the listed services strict.
	StrictServices []string `json:"strictServices,omitempty" yaml:"strictServices"`
	// Fallback lists, per tag, the environments tried in order when the
	// tag's own environment has no ready instance, before trunk. The key
	// "*" ([AnyTag]) applies to every tag without an entry of its own.
	// Trunk is always the last resort of a non-strict service and is not
	// listed.
	Fallback map[string][]string `json:"fallback,omitempty" yaml:"fallback"`
	// ConnectGrace is how long a request waits for instances of its
	// allowed environments that are still connecting (a server that
	// accepts but never answers) before it fails with [ErrNoLane] (gRPC:
	// codes.Unavailable) instead of waiting out its whole deadline. The
	// gRPC balancer stops counting an endpoint that has been CONNECTING
	// for longer; the HTTP [Transport] abandons a TCP connect that takes
	// longer (a connection failure: ejected, retried on the same lane).
	// 0 means [DefaultConnectGrace]; in the files a duration string
	// ("500ms").
	ConnectGrace Duration `json:"connectGrace,omitempty" yaml:"connectGrace"`
	// Zone is the zone (room, availability zone) the caller runs in;
	// within the lane the env rule chose, picks prefer instances whose
	// registry entry carries the same "zone" label (see [ZoneSpills]);
	// zone never moves a request to another lane. "" means no zone
	// preference. In the shadowlane config, the SHADOWLANE_ZONE
	// environment variable overrides it ([ZoneEnvVar]).
	Zone string `json:"zone,omitempty" yaml:"zone"`
	// ZoneSpill is the fraction in [0, 1] below which the caller zone's
	// share of the lane's healthy instances (local < zoneSpill × healthy,
	// or no local instance at all) makes picks spill round robin over
	// every zone of the lane (see [ZoneSpills]); 0 spills only when no
	// local instance is left.
	ZoneSpill float64 `json:"zoneSpill,omitempty" yaml:"zoneSpill"`
	// Pin pins load-test runs to one zone each (the single-room pressure
	// test): run id (or [AnyRun] for every run without an entry of its
	// own) -> zone. Within the lane the env rule chose, a pinned run's
	// picks go only to instances labelled with its zone, and fail with a
	// [*PinError] (errors.Is [ErrZonePinned]) when there is none, never
	// spilled to another zone. A downstream whose instances carry no zone
	// labels has no instance in any zone: it refuses pinned runs too (fail
	// closed; label its instances, or pin only the runs meant for zoned
	// services). Production traffic and unpinned runs keep the zone rule
	// above. The run id is what the edge's signed token vouches for, so a
	// pin adds nothing to trust on the wire.
	Pin map[string]string `json:"pin,omitempty" yaml:"pin"`
}

// IsZero reports whether c sets nothing (the default rule).
func (c Config) IsZero() bool {
	return !c.Strict && len(c.StrictServices) == 0 && len(c.Fallback) == 0 && c.ConnectGrace == 0 &&
		c.Zone == "" && c.ZoneSpill == 0 && len(c.Pin) == 0
}

// DefaultConnectGrace is the connect grace of a [Config] that sets none.
const DefaultConnectGrace = time.Second

// Duration is a time.Duration written in JSON and YAML as a duration
// string ("1.5s", see time.ParseDuration).
type Duration time.Duration

// String is the duration string ("1.5s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("envtag: duration: want a string such as \"500ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("envtag: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: the value is decoded as a
// time.Duration is (a duration string; errors name the line).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var v time.Duration
	if err := n.Decode(&v); err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// AnyTag is the [Config.Fallback] key that applies to every tag.
const AnyTag = "*"

// Policy is a validated, immutable [Config]. The nil *Policy is the default
// rule (non-strict, no configured fallbacks). Safe for concurrent use.
type Policy struct {
	strict    bool
	strictSvc map[string]bool
	fallback  map[string][]string
	grace     time.Duration
	zone      string
	zoneSpill float64
	pin       map[string]string // run (or AnyRun) -> zone; nil: no pins
}

// NewPolicy validates c and returns its Policy. Every tag and fallback
// environment must satisfy [propagation.ValidID] (fallback keys may also be
// [AnyTag]); a tag may not fall back to itself.
func NewPolicy(c Config) (*Policy, error) {
	p := &Policy{strict: c.Strict, grace: time.Duration(c.ConnectGrace)}
	if p.grace < 0 {
		return nil, fmt.Errorf("envtag: connectGrace %v: negative", p.grace)
	}
	if err := p.setZone(c); err != nil {
		return nil, err
	}
	if err := p.setPin(c); err != nil {
		return nil, err
	}
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

// ConnectGrace returns how long a request may wait for instances that are
// still connecting before it fails (see [Config.ConnectGrace]).
func (p *Policy) ConnectGrace() time.Duration {
	if p == nil || p.grace == 0 {
		return DefaultConnectGrace
	}
	return p.grace
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

// The default policy: an override set with SetDefaultPolicy, else the
// function the shadowlane package installs at init (its default Runtime's
// routing policy). envtag keeps no policy of its own.
var (
	policyOverride atomic.Pointer[Policy]
	policyFunc     installed.Func[Policy]
)

// DefaultPolicy returns the policy used where none is given: the one set
// with [SetDefaultPolicy], else the default shadowlane Runtime's routing
// policy (when the shadowlane package is linked in), else nil (the default
// rule).
func DefaultPolicy() *Policy {
	if p := policyOverride.Load(); p != nil {
		return p
	}
	return policyFunc.Get()
}

// SetDefaultPolicy overrides the default policy for the whole process;
// routing components that use the default see the change at their next
// pick. nil removes the override. Prefer binding transports and balancers
// to a Runtime's policy (WithPolicyFunc(rt.RoutingPolicy)).
func SetDefaultPolicy(p *Policy) { policyOverride.Store(p) }

// SetDefaultPolicyFunc installs the function [DefaultPolicy] falls back
// to. The shadowlane package calls it at init with its default Runtime's
// routing policy; applications have no reason to.
func SetDefaultPolicyFunc(f func() *Policy) { policyFunc.Set(f) }
