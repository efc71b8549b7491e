package shadow

import (
	"strconv"

	"github.com/shadowlane/shadowlane/propagation"
)

// Route is the rule every message adapter applies to one destination name
// (a topic, subject, exchange or queue) before a produce or publish, and it
// counts the decision:
//   - unmarked (production) work keeps name, unless name is a shadow name:
//     then it is refused with [ErrShadowFromProduction] (the two-way guard);
//   - marked work with a malformed mark is refused with [ErrUnsupported];
//   - marked work goes to the shadow twin of name when has reports one is
//     configured for the production name, else it is refused with
//     [ErrNoShadowTarget] (fail closed). A name that already is a shadow
//     name stays as it is.
//
// kind names the destination in rule texts ("topic", "subject", ...);
// target maps a name to a low-cardinality counter target (nil: the name).
// The returned error is nil exactly when the operation may proceed. The
// decision is counted in s (nil: not counted), with the run of m.
func Route(s *Series, store, kind string, n Naming, m propagation.Mark, name string, has func(prod string) bool, target func(string) string) (string, *Error) {
	if target == nil {
		target = func(s string) string { return s }
	}
	if m.Run == "" {
		if n.IsShadow(name) {
			s.Record("", store, target(name), Guard)
			return name, Refuse(store, name, "unmarked work for a shadow "+kind, m, ErrShadowFromProduction)
		}
		return name, nil
	}
	if err := m.Validate(); err != nil {
		s.Record("", store, target(name), Block) // the run is malformed: not evidence of any run
		return name, Refuse(store, name, "malformed mark in context", m, ErrUnsupported)
	}
	prod, isShadow := n.Production(name)
	if has == nil || !has(prod) {
		s.Record(m.Run, store, target(prod), Block)
		return name, Refuse(store, name, "no shadow "+kind+" configured for "+strconv.Quote(prod), m, ErrNoShadowTarget)
	}
	to := name
	if !isShadow {
		to = n.Shadow(prod)
	}
	s.Add(m.Run, store, target(prod), to, Redirect, 1)
	return to, nil
}
