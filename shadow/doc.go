// Package shadow holds what every store adapter shares when it keeps
// load-test work away from production data: shadow naming ([Naming]), the
// typed errors of fail-closed decisions ([Error] and the sentinel errors) and
// the per-store decision counters ([Series]: each shadowlane Runtime owns
// one; [Record] and [Snapshot] delegate to the default Runtime's).
//
// The rules every adapter follows:
//   - marked (load-test) work goes to a shadow target or fails with an
//     [*Error] wrapping [ErrNoShadowTarget], [ErrUnsupported] or [ErrBlocked];
//     "unknown" always means refused, never production;
//   - unmarked (production) work that touches a shadow target is refused with
//     [ErrShadowFromProduction] (the two-way guard) unless the user turned the
//     guard off.
package shadow
