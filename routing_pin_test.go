package shadowlane_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
)

// routing.pin reaches the runtime's routing policy, applies on reload, and
// bad entries (or unknown fields) name their field; an invalid reload keeps
// the pins in force.
func TestRoutingPinConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadowlane.yaml")
	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  zone: room-a
  pin:
    drill-7: room-b
`)
	rt, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	p := rt.RoutingPolicy()
	if p.PinZone("drill-7") != "room-b" || p.PinZone("drill-8") != "" || p.PinZone("") != "" {
		t.Fatalf("pins %v", p.Pins())
	}
	if s := rt.Stats(); s.Pins["drill-7"] != "room-b" {
		t.Fatalf("status pins %v", s.Pins)
	}

	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  zone: room-a
  pin:
    "*": room-c
`)
	if err := rt.Reload(); err != nil {
		t.Fatal(err)
	}
	if p := rt.RoutingPolicy(); p.PinZone("drill-7") != "room-c" || p.PinZone("") != "" {
		t.Fatalf("after reload: pins %v", p.Pins())
	}
	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  pin:
    drill-9: {zone: room-b}
`)
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "pin") {
		t.Fatalf("reload with a malformed pin: %v", err)
	}
	writeFile(t, file, `service: orders
trust:
  mode: internal
routing:
  pins:
    drill-9: room-b
`)
	if err := rt.Reload(); err == nil || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("reload with an unknown field: %v", err)
	}
	if p := rt.RoutingPolicy(); p.PinZone("drill-7") != "room-c" {
		t.Fatalf("invalid reloads changed the pins: %v", p.Pins())
	}

	for _, tc := range []struct {
		pin   map[string]string
		field string
	}{
		{map[string]string{"drill 7": "room-b"}, `routing.pin["drill 7"]`},
		{map[string]string{"drill-7": ""}, "routing.pin[drill-7]"},
		{map[string]string{"drill-7": "room b"}, "routing.pin[drill-7]"},
	} {
		c := edgeConfig()
		c.Routing = shadowlane.RoutingConfig{Pin: tc.pin}
		var fe *shadowlane.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%v: %v, want a FieldError on %s", tc.pin, err, tc.field)
		}
	}
}
