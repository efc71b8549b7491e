// Package lostmark passes the lost-mark guard's "already counted" note
// between two layers of the same exit: the gorm plugin over a database/sql
// pool that slsql also wraps (Orchestrion wires both). With testData.action
// alert the outer layer counts the catch and lets the statement go on; the
// inner layer must not count it again.
package lostmark

import "context"

type countedKey struct{}

// Counted returns ctx noting that the lost-mark guard already counted the
// operation it carries. Called only on an alerted catch, so the allocation
// is never on the production path.
func Counted(ctx context.Context) context.Context {
	return context.WithValue(ctx, countedKey{}, true)
}

// IsCounted reports whether an outer layer already counted the operation.
func IsCounted(ctx context.Context) bool { return ctx.Value(countedKey{}) != nil }
