package envtag

import (
	"fmt"
	"os"

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
}

// Validate reports an endpoint without an address or with a malformed label.
func (e Endpoint) Validate() error {
	if e.Addr == "" {
		return fmt.Errorf("envtag: endpoint without address (env %q)", e.Env)
	}
	if _, err := ParseEnv(e.Env); err != nil {
		return fmt.Errorf("envtag: endpoint %s: %w", e.Addr, err)
	}
	return nil
}
