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
	// RequireEnvBinding makes the token decide the env tag of load-test
	// traffic at an edge: the mark's env is the token's env (empty for a
	// token not bound to one), and a request naming another env tag is
	// untrusted ([ErrEnvNotBound]). Without it, a token not bound to an env
	// may be combined with any env tag the request carries.
	RequireEnvBinding bool
}

// Decide returns the mark to use for w and the token to forward.
//
// At an edge, a request with any load-test indicator (w.LoadTest: a run or
// token, header or baggage, well formed or not) is load-test traffic only
// when it carries a token that verifies; the token alone is enough, the run
// and env then come from it. A run or env on the wire that disagrees with
// the token, carriers that disagree with each other, a malformed run or
// token, a missing, expired, tampered or unknown-key token: each makes the
// mark untrusted. Then the returned mark is the zero (production, trunk) mark
// and err wraps [ErrUntrusted] and the cause, so the caller refuses (the
// default), or strips, and counts. Env-only marks are not load-test traffic
// and pass as they are.
//
// At an internal entry marks are taken as sent; a token alone gives its
// (unverified) run and env; carriers that disagree about the run are
// untrusted there too.
func (p *Policy) Decide(w Wire) (m Mark, token string, err error) {
	if !w.LoadTest && w.Mark.Run == "" && w.Token == "" {
		return w.Mark, w.Token, nil
	}
	if p == nil || p.Trust == Internal {
		if w.Dropped&DropConflict != 0 {
			return Mark{}, "", fmt.Errorf("%w: %w", ErrUntrusted, ErrConflict)
		}
		m = w.Mark
		if m.Run == "" && w.Token != "" {
			if c, _, _, perr := ParseToken(w.Token); perr == nil {
				m.Run = c.Run
				if m.Env == "" {
					m.Env = c.Env
				}
			}
		}
		if m.Run == "" {
			return m, "", nil
		}
		return m, w.Token, nil
	}
	untrusted := func(cause error) (Mark, string, error) {
		return Mark{}, "", fmt.Errorf("%w: %w", ErrUntrusted, cause)
	}
	switch {
	case w.Dropped&DropConflict != 0:
		return untrusted(ErrConflict)
	case w.Dropped&DropMalformedRun != 0:
		return untrusted(fmt.Errorf("%w: run", ErrMalformed))
	case w.Dropped&DropMalformedToken != 0:
		return untrusted(fmt.Errorf("%w: token too long", ErrTokenMalformed))
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	c, verr := p.Keyring.VerifyClaims(w.Token, now())
	if verr != nil {
		return untrusted(verr)
	}
	if w.Mark.Run != "" && w.Mark.Run != c.Run {
		return untrusted(fmt.Errorf("%w: token is for run %q, request claims %q", ErrTokenMismatch, c.Run, w.Mark.Run))
	}
	m = Mark{Run: c.Run, Env: w.Mark.Env}
	switch {
	case c.Env != "":
		if w.Mark.Env != "" && w.Mark.Env != c.Env {
			return untrusted(fmt.Errorf("%w: token is for env %q, request claims %q", ErrTokenMismatch, c.Env, w.Mark.Env))
		}
		m.Env = c.Env
	case p.RequireEnvBinding && w.Mark.Env != "":
		return untrusted(fmt.Errorf("%w: the token binds no env, the request claims %q", ErrEnvNotBound, w.Mark.Env))
	}
	return m, w.Token, nil
}
