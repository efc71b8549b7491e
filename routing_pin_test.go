package shadowlane_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
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
		c.Routing = shadowlane.RoutingConfig{Config: envtag.Config{Pin: tc.pin}}
		var fe *shadowlane.FieldError
		if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%v: %v, want a FieldError on %s", tc.pin, err, tc.field)
		}
	}
}

// Pinned picks and refusals reach the runtime's routing stats, the admin
// status page and the shadowlane.envtag.pinned_picks metric.
func TestRoutingPinStats(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := edgeConfig()
	c.Routing = shadowlane.RoutingConfig{Config: envtag.Config{Zone: "room-a", Pin: map[string]string{"r-pin": "room-b"}}}
	rt, err := shadowlane.New(c, shadowlane.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	p := envtag.NewPool("stock", rt.RoutingPolicy(), []envtag.Member[string]{{Zone: "room-a", Item: "a1"}, {Zone: "room-b", Item: "b1"}},
		envtag.PoolStats(rt.RoutingStats()))
	for i := 0; i < 3; i++ {
		if got, err := p.Pick(propagation.Mark{Run: "r-pin"}); err != nil || got != "b1" {
			t.Fatalf("pinned pick %q %v", got, err)
		}
	}
	down := envtag.NewPool("stock", rt.RoutingPolicy(), []envtag.Member[string]{{Zone: "room-a", Item: "a1"}}, envtag.PoolStats(rt.RoutingStats()))
	for i := 0; i < 2; i++ {
		if _, err := down.Pick(propagation.Mark{Run: "r-pin"}); !errors.Is(err, envtag.ErrZonePinned) {
			t.Fatalf("pinned pick without room-b: %v", err)
		}
	}
	if got, err := down.Pick(propagation.Mark{}); err != nil || got != "a1" {
		t.Fatalf("production pick %q %v", got, err)
	}

	rec := httptest.NewRecorder()
	rt.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/shadowlane/status", nil))
	var st shadowlane.Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("status %d: %v\n%s", rec.Code, err, rec.Body)
	}
	var row envtag.Count
	for _, r := range st.Routing {
		if r.Service == "stock" && r.Class == propagation.ClassLoadTest {
			row = r
		}
	}
	if row.Pinned != 3 || row.PinRefused != 2 || st.Pins["r-pin"] != "room-b" {
		t.Fatalf("status page routing %+v pins %v", st.Routing, st.Pins)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "shadowlane.envtag.pinned_picks" {
				for _, dp := range sum.DataPoints {
					r, _ := dp.Attributes.Value("result")
					got[r.AsString()] += dp.Value
				}
			}
		}
	}
	if got["served"] != 3 || got["refused"] != 2 {
		t.Fatalf("pinned_picks metric %v", got)
	}
}
