package shadow_test

import (
	"errors"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

func TestRoute(t *testing.T) {
	has := func(p string) bool { return p == "orders" }
	lt := propagation.Mark{Run: "r1"}
	for _, tc := range []struct {
		m       propagation.Mark
		name    string
		want    string
		wantErr error
	}{
		{propagation.Mark{}, "orders", "orders", nil},
		{propagation.Mark{Env: "proj-a"}, "payments", "payments", nil},
		{propagation.Mark{}, "orders_shadow", "", shadow.ErrShadowFromProduction},
		{lt, "orders", "orders_shadow", nil},
		{lt, "orders_shadow", "orders_shadow", nil},
		{lt, "payments", "", shadow.ErrNoShadowTarget},
		{lt, "payments_shadow", "", shadow.ErrNoShadowTarget},
		{propagation.Mark{Run: "bad run"}, "orders", "", shadow.ErrUnsupported},
	} {
		got, err := shadow.Route(nil, "test-route", "topic", shadow.DefaultTopic, tc.m, tc.name, has, nil)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || err.Store != "test-route" {
				t.Errorf("%v %q: err %v, want %v", tc.m, tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v %q: got %q %v, want %q", tc.m, tc.name, got, err, tc.want)
		}
	}
	if _, err := shadow.Route(nil, "test-route", "topic", shadow.DefaultTopic, lt, "orders", nil, nil); !errors.Is(err, shadow.ErrNoShadowTarget) {
		t.Errorf("nil has must fail closed: %v", err)
	}
}
