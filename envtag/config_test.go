package envtag_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shadowlane/shadowlane/envtag"
)

// TestConfigFiles: one Config reads the same fields from JSON (the gRPC
// balancer's service config) and YAML (the shadowlane config's routing
// section), and writes them back.
func TestConfigFiles(t *testing.T) {
	want := envtag.Config{StrictServices: []string{"payments"}, Fallback: map[string][]string{"proj-b": {"proj-a"}},
		ConnectGrace: envtag.Duration(250 * time.Millisecond), Zone: "room-a", ZoneSpill: 0.5, Pin: map[string]string{"drill-7": "room-b"}}
	js := `{"strictServices":["payments"],"fallback":{"proj-b":["proj-a"]},"connectGrace":"250ms","zone":"room-a","zoneSpill":0.5,"pin":{"drill-7":"room-b"}}`
	ys := "strictServices: [payments]\nfallback: {proj-b: [proj-a]}\nconnectGrace: 250ms\nzone: room-a\nzoneSpill: 0.5\npin: {drill-7: room-b}\n"
	var fromJSON, fromYAML envtag.Config
	if err := json.Unmarshal([]byte(js), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(ys), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromJSON, want) || !reflect.DeepEqual(fromYAML, want) {
		t.Fatalf("JSON %+v\nYAML %+v\nwant %+v", fromJSON, fromYAML, want)
	}
	if b, err := json.Marshal(want); err != nil || string(b) != js {
		t.Errorf("JSON out %s %v", b, err)
	}
	b, err := yaml.Marshal(want)
	var back envtag.Config
	if err != nil || yaml.Unmarshal(b, &back) != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("YAML round trip %s %v", b, err)
	}
	if err := yaml.Unmarshal([]byte("connectGrace: 5\n"), &back); err == nil {
		t.Error("a bare number taken as a duration")
	}
	if want.IsZero() || !(envtag.Config{}).IsZero() {
		t.Error("IsZero")
	}
}
