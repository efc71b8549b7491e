package envtag

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
)

// EnvVar is the environment variable that names the environment an instance
// belongs to. Empty or unset means trunk.
const EnvVar = "SHADOWLANE_ENV"

// LabelKey is the metadata key under which registries and resolvers store an
// instance's environment label.
const LabelKey = "shadowlane.env"

// Trunk is the environment label of trunk instances (and the tag of
// untagged requests): the empty string.
const Trunk = ""

// Self returns this instance's environment from [EnvVar]: "" (trunk) when the
// variable is unset or empty. A value that is not a valid tag (see
// [propagation.ValidID]) is an error wrapping [propagation.ErrMalformed]:
// an instance whose label cannot be trusted must not start and register as
// trunk, where it would receive untagged traffic.
func Self() (string, error) { return ParseEnv(os.Getenv(EnvVar)) }

// ParseEnv validates an environment label: "" is trunk, anything else must
// satisfy [propagation.ValidID].
func ParseEnv(v string) (string, error) {
	if v == Trunk || propagation.ValidID(v) {
		return v, nil
	}
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return "", fmt.Errorf("envtag: environment label %q: %w", v, propagation.ErrMalformed)
}

// Endpoint is one instance of a service: where to reach it and the
// environment it belongs to (Env "" = trunk).
type Endpoint struct {
	Addr string `json:"addr"`
	Env  string `json:"env,omitempty"`
	// Zone is the instance's zone label ("" = none), a routing preference
	// within its environment lane (see [ZoneSpills]).
	Zone string `json:"zone,omitempty"`
}

// Validate reports an endpoint without an address or with a malformed label.
func (e Endpoint) Validate() error {
	if e.Addr == "" {
		return fmt.Errorf("envtag: endpoint without address (env %q)", e.Env)
	}
	if _, err := ParseEnv(e.Env); err != nil {
		return fmt.Errorf("envtag: endpoint %s: %w", e.Addr, err)
	}
	if _, err := ParseZone(e.Zone); err != nil {
		return fmt.Errorf("envtag: endpoint %s: %w", e.Addr, err)
	}
	return nil
}

// ErrConflict is wrapped by every error about one address listed under two
// environments in one set of endpoints. Such a set is refused whole: the
// instance behind the address belongs to one environment only, and routing
// it under both would send untagged traffic to a project instance (or one
// project's traffic to another's).
var ErrConflict = errors.New("envtag: address listed under two environments")

// ConflictError names an address that a set of endpoints lists under two
// environment labels. errors.Is(err, [ErrConflict]) holds.
type ConflictError struct {
	Addr string    // the address as first listed
	Envs [2]string // the two labels ("" = trunk), in the order listed
}

func (e *ConflictError) Error() string {
	a, b := e.Envs[0], e.Envs[1]
	if a == Trunk {
		a = "trunk"
	}
	if b == Trunk {
		b = "trunk"
	}
	return fmt.Sprintf("envtag: address %s is listed under two environments (%s and %s)", quote(e.Addr), quote(a), quote(b))
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

// AddrKey returns the form of addr under which two listings are compared:
// host names lowercased, IP addresses in canonical form ("[::1]:80",
// IPv4-mapped IPv6 unmapped), so that one instance written two ways is
// still one instance.
func AddrKey(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(ap.Addr().Zone()), ap.Port()).String()
	}
	return strings.ToLower(addr)
}

// CheckConflicts reports the first address that eps lists under two
// different environment labels, as a [*ConflictError]. Listing the same
// address twice under the same label is not a conflict.
func CheckConflicts(eps []Endpoint) error {
	if len(eps) < 2 {
		return nil
	}
	seen := make(map[string]int, len(eps))
	for i, e := range eps {
		k := AddrKey(e.Addr)
		if j, ok := seen[k]; ok {
			if eps[j].Env != e.Env {
				return &ConflictError{Addr: eps[j].Addr, Envs: [2]string{eps[j].Env, e.Env}}
			}
			continue
		}
		seen[k] = i
	}
	return nil
}
