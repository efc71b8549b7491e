package propagation

import (
	"context"
	"errors"
	"fmt"
)

// MaxIDLen is the longest run id or environment tag accepted.
const MaxIDLen = 64

// Mark is the pair of facts shadowlane carries with every request.
//
// Run is the load-test run id: non-empty means the request is load-test
// traffic and everything it writes must go to shadow targets. Env is the
// environment tag: empty means trunk (the shared base environment), anything
// else names a project environment whose instances should serve the request.
//
// Both fields are restricted to 1..[MaxIDLen] bytes of [A-Za-z0-9_-]; use
// [Mark.Validate] or [ValidID] before trusting a value from outside.
type Mark struct {
	Run string
	Env string
}

// LoadTest reports whether m belongs to a load-test run.
func (m Mark) LoadTest() bool { return m.Run != "" }

// IsZero reports whether m is the production, trunk mark.
func (m Mark) IsZero() bool { return m.Run == "" && m.Env == "" }

// String renders m for logs: "run=r1 env=proj-a", "production" for the zero mark.
func (m Mark) String() string {
	switch {
	case m.IsZero():
		return "production"
	case m.Env == "":
		return "run=" + m.Run
	case m.Run == "":
		return "env=" + m.Env
	}
	return "run=" + m.Run + " env=" + m.Env
}

// Class is "loadtest" for load-test marks and "production" otherwise; it is
// the value of the traffic-class attribute on every metric shadowlane emits.
func (m Mark) Class() string {
	if m.Run != "" {
		return ClassLoadTest
	}
	return ClassProduction
}

// Traffic classes.
const (
	ClassProduction = "production"
	ClassLoadTest   = "loadtest"
)

// ErrMalformed is returned (wrapped) when a run id or env tag is not
// 1..MaxIDLen bytes of [A-Za-z0-9_-].
var ErrMalformed = errors.New("shadowlane: malformed mark value")

// Validate returns nil when both fields are empty or well formed, or an error
// wrapping [ErrMalformed] that names the bad field.
func (m Mark) Validate() error {
	if m.Run != "" && !ValidID(m.Run) {
		return fmt.Errorf("%w: run %q", ErrMalformed, clip(m.Run))
	}
	if m.Env != "" && !ValidID(m.Env) {
		return fmt.Errorf("%w: env %q", ErrMalformed, clip(m.Env))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ValidID reports whether s is 1..MaxIDLen bytes of [A-Za-z0-9_-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte[s[i]] {
			return false
		}
	}
	return true
}

var idByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

type ctxKey struct{}

type ctxValue struct {
	m     Mark
	token string
}

// With returns a copy of ctx carrying m. With(ctx, Mark{}) explicitly marks
// ctx as production/trunk, hiding any mark a parent context carried.
// It does not validate m: entries validate what they read from the wire.
func With(ctx context.Context, m Mark) context.Context {
	return context.WithValue(ctx, ctxKey{}, &ctxValue{m: m})
}

// WithToken is [With] that also keeps the signed token the mark arrived
// with, so outbound hops forward it and downstream edge-mode entries can
// verify the mark again.
func WithToken(ctx context.Context, m Mark, token string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &ctxValue{m: m, token: token})
}

// FromContext returns the mark carried by ctx, or the zero Mark. It does
// not allocate.
func FromContext(ctx context.Context) Mark {
	if ctx == nil {
		return Mark{}
	}
	if v, _ := ctx.Value(ctxKey{}).(*ctxValue); v != nil {
		return v.m
	}
	return Mark{}
}

// TokenFromContext returns the signed token stored by [WithToken], if any.
func TokenFromContext(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if v, _ := ctx.Value(ctxKey{}).(*ctxValue); v != nil {
		return v.token
	}
	return ""
}

// HasMark reports whether ctx (or a parent) had a mark set with [With], even
// the zero one.
func HasMark(ctx context.Context) bool {
	v, _ := ctx.Value(ctxKey{}).(*ctxValue)
	return v != nil
}

// IsLoadTest reports whether ctx carries a load-test mark. It is the
// cheapest check for hot paths (no copy of the mark).
func IsLoadTest(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	v, _ := ctx.Value(ctxKey{}).(*ctxValue)
	return v != nil && v.m.Run != ""
}
