package drill

import (
	"context"
	"strings"
	"testing"
)

// TestZonesPhase runs the two-zone drill on its own: every invariant
// holds, the pinned run reached only room-b (the instances' own counters)
// and, with room-b stopped, nothing at all.
func TestZonesPhase(t *testing.T) {
	d := &drillRun{o: Options{Requests: 20}.withDefaults(), rep: &Report{}, run: "drill-zones-test"}
	if err := d.zonesPhase(context.Background()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	d.rep.summaryZones(&b)
	t.Log("\n" + b.String())
	if len(d.rep.Invariants) < 20 {
		t.Fatalf("%d invariants", len(d.rep.Invariants))
	}
	for _, inv := range d.rep.Invariants {
		if !inv.OK {
			t.Errorf("%s: expected %d, observed %d (%s)", inv.Name, inv.Expected, inv.Observed, inv.Detail)
		}
	}
	z := d.rep.Zones
	var pinned, down *ZonePhase
	for i := range z.Phases {
		switch z.Phases[i].Name {
		case "pinned-run":
			pinned = &z.Phases[i]
		case "pinned-run-room-b-down":
			down = &z.Phases[i]
		}
	}
	if pinned == nil || down == nil {
		t.Fatalf("phases %+v", z.Phases)
	}
	for _, svc := range zoneServices {
		if pinned.Served[svc][zoneB] != 20 || pinned.Served[svc][zoneA] != 0 {
			t.Errorf("pinned run %s served %v", svc, pinned.Served[svc])
		}
		if len(down.Served[svc]) != 0 {
			t.Errorf("pinned run with room-b down: %s served %v", svc, down.Served[svc])
		}
	}
	if down.Refused != 20 {
		t.Errorf("pinned run with room-b down: %d refused", down.Refused)
	}
}
