package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shadowlane/shadowlane"
)

// TestCheckAndRuntimeAgree feeds the same files to `shadowlane check` and to
// the runtime (Init): both refuse each one and name the same field, since
// both run one validator.
func TestCheckAndRuntimeAgree(t *testing.T) {
	dir := t.TempDir()
	base := "trust:\n  mode: internal\n"
	for _, tc := range []struct{ name, yaml, field string }{
		{"allow everything", base + "outbound:\n  allow: [orders, \"*\"]\n", "outbound.allow[1]"},
		{"allow every IPv4", base + "outbound:\n  allow: [0.0.0.0/0]\n", "outbound.allow[0]"},
		{"colliding headers", base + "headers:\n  run: X-Mark\n  env: x-mark\n", "headers.env"},
		{"run header is baggage", base + "headers:\n  run: baggage\n", "headers.run"},
		{"equal members", base + "headers:\n  runMember: m\n  envMember: m\n", "headers.envMember"},
		{"reload 1ns", base + "reload: 1ns\n", "reload"},
		{"oversized", base + "# " + strings.Repeat("x", shadowlane.MaxConfigFileSize) + "\n", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run([]string{"check", "--config", file}, &out, &errb)
			if code != exitViolation || !strings.Contains(out.String()+errb.String(), tc.field) {
				t.Errorf("check: exit %d, output %q; want %d naming %s", code, out.String()+errb.String(), exitViolation, tc.field)
			}
			_, err := shadowlane.Init(shadowlane.WithConfigFile(file), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
				shadowlane.WithGetenv(func(string) string { return "" }))
			if !errors.Is(err, shadowlane.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Init: %v; want an error naming %s", err, tc.field)
			}
		})
	}
}
