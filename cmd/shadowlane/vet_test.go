package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shadowlane vet runs the analyzer binary it is pointed at with the
// packages (./... by default) and returns its exit code.
func TestVetRunsAnalyzer(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-vet")
	script := "#!/bin/sh\necho \"args: $*\"\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHADOWLANE_VET", bin)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "args: ./..."},
		{[]string{"-fix"}, "args: -fix ./..."},
		{[]string{"./examples/..."}, "args: ./examples/..."},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"vet"}, tc.args...), &out, &errb); code != 3 {
			t.Errorf("%v: exit %d, want the analyzer's 3 (stderr %q)", tc.args, code, errb.String())
		}
		if got := strings.TrimSpace(out.String()); got != tc.want {
			t.Errorf("%v: analyzer saw %q, want %q", tc.args, got, tc.want)
		}
	}
}
