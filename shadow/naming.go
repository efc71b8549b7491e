package shadow

import (
	"errors"
	"fmt"
	"strings"
)

// Naming derives the shadow name of a production name by adding a prefix
// and/or a suffix. The zero Naming is invalid: [Naming.Validate] rejects it,
// because a shadow name equal to the production name would leak.
type Naming struct {
	Prefix string `json:"prefix,omitempty"`
	Suffix string `json:"suffix,omitempty"`
}

// Default namings per kind of store: underscores where SQL identifiers and
// topic names need them, a ':'-style prefix for Redis keys, a leading subject
// token for NATS.
var (
	DefaultTable   = Naming{Suffix: "_shadow"}
	DefaultKey     = Naming{Prefix: "shadow:"}
	DefaultTopic   = Naming{Suffix: "_shadow"}
	DefaultSubject = Naming{Prefix: "shadow."}
	DefaultGroup   = Naming{Suffix: "_shadow"}
)

// ErrBadNaming is returned by Validate.
var ErrBadNaming = errors.New("shadowlane: invalid shadow naming")

// Validate reports whether n can tell shadow names from production names.
func (n Naming) Validate() error {
	if n.Prefix == "" && n.Suffix == "" {
		return fmt.Errorf("%w: prefix and suffix are both empty", ErrBadNaming)
	}
	return nil
}

// Shadow returns the shadow name of name.
func (n Naming) Shadow(name string) string {
	switch {
	case n.Prefix == "":
		return name + n.Suffix
	case n.Suffix == "":
		return n.Prefix + name
	}
	return n.Prefix + name + n.Suffix
}

// IsShadow reports whether name is already a shadow name under n.
func (n Naming) IsShadow(name string) bool {
	if n.Prefix == "" && n.Suffix == "" {
		return false
	}
	return len(name) >= len(n.Prefix)+len(n.Suffix) &&
		strings.HasPrefix(name, n.Prefix) && strings.HasSuffix(name, n.Suffix)
}

// Production returns the production name a shadow name stands for, and
// whether name was a shadow name at all.
func (n Naming) Production(name string) (string, bool) {
	if !n.IsShadow(name) {
		return name, false
	}
	return name[len(n.Prefix) : len(name)-len(n.Suffix)], true
}
