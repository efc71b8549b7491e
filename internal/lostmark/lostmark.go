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
