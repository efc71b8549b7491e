package propagation

import (
	"errors"
	"fmt"
	"time"
)

// Trust says how much an entry believes the marks it receives.
type Trust uint8

const (
	// Edge entries face untrusted callers: a load-test mark is honoured only
	// with a valid signed token. This is the default.
	Edge Trust = iota
	// Internal entries face only our own services and take marks as sent.
	Internal
)

func (t Trust) String() string {
	if t == Internal {
		return "internal"
	}
	return "edge"
}

// ParseTrust parses "edge" or "internal".
func ParseTrust(s string) (Trust, error) {
	switch s {
	case "edge", "":
		return Edge, nil
	case "internal":
		return Internal, nil
	}
	return Edge, fmt.Errorf("shadowlane: trust %q: want edge or internal", s)
}

// ErrUntrusted wraps the token error when an edge refuses a load-test mark.
var ErrUntrusted = errors.New("shadowlane: untrusted load-test mark")

// Policy decides which mark a request gets from what arrived on the wire.
type Policy struct {
	Trust   Trust
	Keyring *Keyring         // required to honour load-test marks at an edge
	Now     func() time.Time // nil: time.Now
}

// Decide returns the mark to use for w and the token to forward. At an edge
// a load-test mark without a valid token is stripped: the returned mark is
// the zero (production, trunk) mark and err wraps [ErrUntrusted] and the
// token error, so the caller can count, log or reject. Env-only marks are
// not load-test traffic and pass as they are.
func (p *Policy) Decide(w Wire) (m Mark, token string, err error) {
	if w.Mark.Run == "" || p == nil || p.Trust == Internal {
		return w.Mark, w.Token, nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if _, verr := p.Keyring.Verify(w.Token, w.Mark, now()); verr != nil {
		return Mark{}, "", fmt.Errorf("%w: %w", ErrUntrusted, verr)
	}
	return w.Mark, w.Token, nil
}
