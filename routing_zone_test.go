package shadowlane_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
)

// routing.zone and routing.zoneSpill reach the runtime's routing policy;
// SHADOWLANE_ZONE overrides the file; malformed values name their field.
func TestRoutingZoneConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  zone: room-a
  zoneSpill: 0.5
`)
	for _, tc := range []struct{ env, want string }{{"", "room-a"}, {"room-b", "room-b"}} {
		rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
			shadowlane.WithGetenv(func(k string) string {
				if k == "SHADOWLANE_ZONE" {
					return tc.env
				}
				return ""
			}))
		if err != nil {
			t.Fatal(err)
		}
		p := rt.RoutingPolicy()
		if p.Zone() != tc.want || p.ZoneSpill() != 0.5 {
			t.Errorf("SHADOWLANE_ZONE=%q: zone %q spill %v, want %q 0.5", tc.env, p.Zone(), p.ZoneSpill(), tc.want)
		}
		rt.Close()
	}
	for _, tc := range []struct {
		r     shadowlane.RoutingConfig
		field string
	}{
		{shadowlane.RoutingConfig{Config: envtag.Config{Zone: "room a"}}, "routing.zone"},
		{shadowlane.RoutingConfig{Config: envtag.Config{Zone: "a", ZoneSpill: 1.5}}, "routing.zoneSpill"},
		{shadowlane.RoutingConfig{Config: envtag.Config{ZoneSpill: -1}}, "routing.zoneSpill"},
	} {
		c := edgeConfig()
		c.Routing = tc.r
		var fe *shadowlane.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a FieldError on %s", tc.r, err, tc.field)
		}
	}
}
