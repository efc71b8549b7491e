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
	if !rep.OK || len(rep.Invariants) < 130 {
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
		// environment routing: proj-a hits orders@proj-a, inventory@trunk,
		// then ledger@proj-a again; untagged never reaches a project
		// instance; a tag without a lane falls back to trunk everywhere;
		// a strict ledger fails fast; load-test + env routes the same way.
		"env-tagged-production: orders served by the proj-a instance",
		"env-tagged-production: inventory served by the trunk instance",
		"env-tagged-production: ledger served by the proj-a instance",
		"env-tagged-production: ledger saw mark \"env=proj-a\"",
		"loadtest-env-bound-token: orders served by the proj-a instance",
		"loadtest-env-bound-token: ledger served by the proj-a instance",
		"env-no-lane-fallback: orders served by the trunk instance",
		"env-no-lane-fallback: ledger served by the trunk instance",
		"routing: untagged requests served by a project instance (any hop)",
		"routing: untagged requests served by trunk instances (hop visits)",
		"strict-ledger-no-lane: HTTP 503",
		"strict-ledger-no-lane: ledger never reached",
		"strict-ledger-lane: ledger served by the proj-a instance",
		"routing: strict misses fail fast (every answer within 1s)",
		"routing: a reload with an invalid routing section is refused and keeps the strict ledger",
		"routing counters: orders lane picks (tagged calls served by their own environment)",
	} {
		if !names[want] {
			t.Errorf("missing invariant %q", want)
		}
	}
	for src, applied := range rep.Routing.EdgeTagSource {
		if want := "env-from-" + src + ": orders served by the proj-a instance"; applied && !names[want] {
			t.Errorf("edge tag source %s applied, but missing invariant %q", src, want)
		}
	}

	// The report's routing section, read independently of the invariants.
	served := map[string]drill.Served{}
	for _, s := range rep.Routing.Served {
		served[s.Scenario] = s
	}
	for _, tc := range []struct {
		scenario, hop, env string
		n                  int
	}{
		{"env-tagged-production", "orders", "proj-a", 5},
		{"env-tagged-production", "inventory", "trunk", 5},
		{"env-tagged-production", "ledger", "proj-a", 5},
		{"loadtest-env-bound-token", "orders", "proj-a", 5},
		{"loadtest-env-bound-token", "ledger", "proj-a", 5},
		{"env-no-lane-fallback", "orders", "trunk", 5},
		{"env-no-lane-fallback", "ledger", "trunk", 5},
		{"strict-ledger-no-lane", "ledger", "trunk", 0},
		{"strict-ledger-no-lane", "ledger", "proj-a", 0},
	} {
		s := served[tc.scenario]
		if got := s.Hops[tc.hop][tc.env]; got != tc.n || len(s.Hops[tc.hop]) > 1 {
			t.Errorf("%s at %s: served %v, want %s=%d only", tc.scenario, tc.hop, s.Hops[tc.hop], tc.env, tc.n)
		}
	}
	for _, s := range rep.Routing.Served {
		if s.Tag != "" {
			continue
		}
		for hop, m := range s.Hops {
			for env, n := range m {
				if env != "trunk" && n > 0 {
					t.Errorf("untagged scenario %s reached %s@%s %d times", s.Scenario, hop, env, n)
				}
			}
		}
	}
	if got := strings.Join(rep.Routing.Instances["orders"], "+"); got != "trunk+proj-a" {
		t.Errorf("orders instances %q", got)
	}
	var summary bytes.Buffer
	rep.Summary(&summary)
	if !strings.Contains(summary.String(), "routing per env") || !strings.Contains(summary.String(), "env-tagged-production") {
		t.Errorf("summary lacks the routing section:\n%s", summary.String())
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
