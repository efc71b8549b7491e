package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Every --format prints the token in a form a load generator takes as is,
// the expiry is shown, and a TTL shorter than the stated run length warns.
func TestTokenFormats(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sl.yaml")
	os.WriteFile(cfg, []byte("trust:\n  keys:\n    - id: k1\n      secret: 0123456789abcdef0123456789abcdef\n"), 0o600)
	for _, tc := range []struct {
		format string
		want   []string
	}{
		{"token", []string{"v1.k1.r1.."}},
		{"header", []string{"X-Shadowlane-Token: v1.k1.r1.."}},
		{"curl", []string{"curl -H 'X-Shadowlane-Token: v1.k1.r1..", "'http://shop:8080/buy'"}},
		{"hey", []string{"hey -z 2h0m0s -H 'X-Shadowlane-Token: v1.k1.r1..", "'http://shop:8080/buy'"}},
		{"vegeta", []string{"echo 'GET http://shop:8080/buy' | vegeta attack -duration=2h0m0s -header 'X-Shadowlane-Token: v1.k1.r1.."}},
		{"k6", []string{"import http from 'k6/http'", "headers: { 'X-Shadowlane-Token': 'v1.k1.r1..", "http.get('http://shop:8080/buy', params)"}},
		{"env", []string{"export SHADOWLANE_TOKEN='v1.k1.r1..", "export SHADOWLANE_TOKEN_HEADER='X-Shadowlane-Token'", "SHADOWLANE_TOKEN_EXPIRES="}},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"token", "--config", cfg, "--run", "r1", "--ttl", "30m", "--run-length", "2h", "--format", tc.format, "--url", "http://shop:8080/buy"}, &out, &errb)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.format, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.format, w, out.String())
			}
		}
		if !strings.Contains(errb.String(), "expires ") || !strings.Contains(errb.String(), "warning: --ttl 30m0s is shorter than --run-length 2h0m0s") {
			t.Errorf("%s: stderr lacks the expiry or the TTL warning:\n%s", tc.format, errb.String())
		}
		// the printed token verifies for its run
		tok := out.String()
		i := strings.Index(tok, "v1.")
		tok = tok[i:]
		tok = tok[:strings.IndexAny(tok, "'\n")]
		c, _, _, err := propagation.ParseToken(tok)
		if err != nil || c.Run != "r1" || time.Until(c.Expires) > 31*time.Minute || time.Until(c.Expires) < 28*time.Minute {
			t.Errorf("%s: token %q: %+v %v", tc.format, tok, c, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"token", "--config", cfg, "--run", "r1", "--ttl", "3h", "--run-length", "2h"}, &out, &errb); code != exitOK || strings.Contains(errb.String(), "warning") {
		t.Errorf("long enough TTL warned: %d %s", code, errb.String())
	}
	if code := run([]string{"token", "--config", cfg, "--run", "r1", "--format", "wget"}, &out, &errb); code != exitUsage {
		t.Errorf("unknown format: exit %d", code)
	}
}
