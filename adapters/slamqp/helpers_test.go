package slamqp_test

import (
	"testing"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
)

// newShadow returns slamqp.New(opts...), failing t on an error.
func newShadow(t testing.TB, opts ...slamqp.Option) *slamqp.Shadow {
	t.Helper()
	s, err := slamqp.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
