package shadowlane_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
)

// The trust settings of issue 21 / 16 load from YAML: onUntrusted defaults
// to reject, strip and requireEnvBinding are explicit choices, gRPC mocks
// decode; no keys at an edge is a warning, not an error.
func TestTrustConfigFromYAML(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "sl.yaml")
	body := `trust:
  onUntrusted: strip
  requireEnvBinding: true
  keys:
    - id: k1
      secret: 0123456789abcdef0123456789abcdef
outbound:
  mocks:
    - {host: pay.example.com, grpcMethod: /pay.v1.Payments/Charge, grpcCode: 14, body: down}
`
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := shadowlane.LoadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.Trust.OnUntrusted != "strip" || !c.Trust.RequireEnvBinding || len(c.Outbound.Mocks) != 1 || c.Outbound.Mocks[0].GRPCMethod != "/pay.v1.Payments/Charge" || c.Outbound.Mocks[0].GRPCCode != 14 {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rt, err := shadowlane.New(shadowlane.Config{})
	if err != nil {
		t.Fatalf("no keys must not fail: %v", err)
	}
	defer rt.Close()
	if w := rt.Stats().Warnings; len(w) != 1 || !strings.Contains(w[0], "without token keys") {
		t.Fatalf("warnings %v", w)
	}
	if err := (&shadowlane.Config{Trust: shadowlane.TrustConfig{OnUntrusted: "maybe"}}).Validate(); err == nil {
		t.Fatal("bad onUntrusted accepted")
	}
}
