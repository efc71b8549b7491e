package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/drill"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestDrillPasses(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"drill", "--requests", "5", "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep drill.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Invariants) < 80 {
		t.Fatalf("report: ok=%v invariants=%d", rep.OK, len(rep.Invariants))
	}
	names := map[string]bool{}
	for _, inv := range rep.Invariants {
		names[inv.Name] = true
	}
	for _, want := range []string{
		"third party: load-test calls that reached the payment provider",
		"loadtest-baggage-only: relay saw mark \"run=" + rep.Run + "\"",
		"forged-no-token: inventory saw mark \"production\"",
		"killswitch-edge-loadtest: inventory never reached",
	} {
		if !names[want] {
			t.Errorf("missing invariant %q", want)
		}
	}
}

func TestTokenAndCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`service: gateway
trust:
  mode: edge
  keys:
    - id: k1
      secret: "0123456789abcdef0123456789abcdef"
outbound:
  allow: ["*.internal"]
`), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("trust:\n  mode: sometimes\n  keys: []\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("trust:\n  mdoe: edge\n"), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"token", "--config", good, "--run", "r1", "--env", "proj-a"}, &out, &errb); code != exitOK {
		t.Fatalf("token: %d %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	c, _, _, err := propagation.ParseToken(tok)
	if err != nil || c.Run != "r1" || c.Env != "proj-a" || c.KeyID != "k1" {
		t.Fatalf("token %q: %+v %v", tok, c, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"check", "--config", good}, exitOK, "ok"},
		{[]string{"check", "--config", bad}, exitViolation, "trust.mode"},
		{[]string{"check", "--config", unknown}, exitViolation, "mdoe"},
		{[]string{"check", "--config", filepath.Join(dir, "missing.yaml")}, exitSetup, "no such file"},
		{[]string{"check"}, exitUsage, "--config is required"},
		{[]string{"token", "--config", good}, exitUsage, "--run is required"},
		{[]string{"token", "--config", good, "--run", "a.b"}, exitUsage, "malformed"},
		{[]string{"nope"}, exitUsage, "unknown command"},
	} {
		out.Reset()
		errb.Reset()
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%v: exit %d (want %d), output %q", tc.args, code, tc.code, out.String()+errb.String())
		}
	}
}
