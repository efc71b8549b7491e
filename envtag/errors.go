package envtag

import (
	"errors"
	"strings"
)

// ErrNoLane is wrapped by every [*RouteError]: no ready instance in any
// environment the request is allowed to use. Test with errors.Is.
var ErrNoLane = errors.New("envtag: no instance for the request's environment")

// ErrPending is matched (errors.Is) by a [*RouteError] whose allowed
// environments have instances that are not ready yet (connecting): a
// balancer may wait for them instead of failing.
var ErrPending = errors.New("envtag: instances not ready yet")

// RouteError says why a request could not be routed.
type RouteError struct {
	Service string   // the downstream service
	Tag     string   // the request's environment tag ("" = untagged)
	Strict  bool     // the service is strict: the tag's own environment only
	Tried   []string // environments allowed, in order ("" = trunk)
	Pending bool     // some allowed environment has instances not ready yet
}

func (e *RouteError) Error() string {
	var b strings.Builder
	b.WriteString("envtag: service ")
	b.WriteString(quote(e.Service))
	switch {
	case e.Tag == "":
		b.WriteString(": no ready trunk instance for an untagged request (untagged requests never go to a project environment)")
	case e.Strict:
		b.WriteString(": strict: no ready instance in environment ")
		b.WriteString(quote(e.Tag))
	default:
		b.WriteString(": no ready instance for tag ")
		b.WriteString(quote(e.Tag))
		b.WriteString(" in [")
		for i, t := range e.Tried {
			if i > 0 {
				b.WriteString(" ")
			}
			if t == "" {
				t = "trunk"
			}
			b.WriteString(t)
		}
		b.WriteString("]")
	}
	if e.Pending {
		b.WriteString(" (instances connecting)")
	}
	return b.String()
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}

// Unwrap returns [ErrNoLane].
func (e *RouteError) Unwrap() error { return ErrNoLane }

// Is matches [ErrPending] when e.Pending is set.
func (e *RouteError) Is(target error) bool { return target == ErrPending && e.Pending }
