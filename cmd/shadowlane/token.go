package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane"
)

// tokenFormats are the forms `shadowlane token --format` prints. The token
// alone carries the run and env (an edge takes the mark from it), so every
// form sends only the token header.
var tokenFormats = []string{"token", "header", "curl", "hey", "vegeta", "k6", "env"}

func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("token", stderr)
	runID := fs.String("run", "", "load-test run id (required)")
	env := fs.String("env", "", "bind the token to this env tag (optional)")
	ttl := fs.Duration("ttl", time.Hour, "validity")
	runLength := fs.Duration("run-length", 0, "how long the load test will run: warns when --ttl is shorter (an edge refuses the load once the token expires)")
	format := fs.String("format", "token", "output: "+strings.Join(tokenFormats, "|"))
	target := fs.String("url", "http://localhost:8080/", "target URL for the curl, hey, vegeta and k6 forms")
	cfgFile := configFlag(fs, "config file holding trust.keys (else SHADOWLANE_KEYS)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *runID == "" {
		fmt.Fprintln(stderr, "shadowlane token: --run is required")
		return exitUsage
	}
	if *ttl <= 0 {
		fmt.Fprintln(stderr, "shadowlane token: --ttl must be positive")
		return exitUsage
	}
	if !contains(tokenFormats, *format) {
		fmt.Fprintf(stderr, "shadowlane token: --format %q: want one of %s\n", *format, strings.Join(tokenFormats, ", "))
		return exitUsage
	}
	rt, code := signer(*cfgFile, "shadowlane token: no keys: give --config with trust.keys, or SHADOWLANE_KEYS=id=secret", stderr)
	if rt == nil {
		return code
	}
	defer rt.Close()
	exp := time.Now().Add(*ttl).Truncate(time.Second)
	tok, err := rt.Keyring().Sign(*runID, *env, exp)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane token:", err)
		return exitUsage
	}
	hdr := rt.Codec().Names().TokenHeader
	envNote := "any env tag the request names"
	if *env != "" {
		envNote = "env " + *env
	}
	fmt.Fprintf(stderr, "token for run %s (%s), expires %s (in %s); send it as the %s header: it alone makes a request load-test traffic\n",
		*runID, envNote, exp.UTC().Format(time.RFC3339), *ttl, hdr)
	if *runLength > 0 && *ttl < *runLength {
		fmt.Fprintf(stderr, "warning: --ttl %s is shorter than --run-length %s: after %s every request of the run is refused (403) at the edge; mint with --ttl %s or more\n",
			*ttl, *runLength, exp.UTC().Format(time.RFC3339), *runLength)
	}
	writeToken(stdout, *format, hdr, tok, *target, exp, *runLength)
	return exitOK
}

func writeToken(w io.Writer, format, hdr, tok, target string, exp time.Time, runLength time.Duration) {
	h := hdr + ": " + tok
	switch format {
	case "token":
		fmt.Fprintln(w, tok)
	case "header":
		fmt.Fprintln(w, h)
	case "curl":
		fmt.Fprintf(w, "curl -H %s %s\n", shellQuote(h), shellQuote(target))
	case "hey":
		d := "60s"
		if runLength > 0 {
			d = runLength.String()
		}
		fmt.Fprintf(w, "hey -z %s -H %s %s\n", d, shellQuote(h), shellQuote(target))
	case "vegeta":
		d := "60s"
		if runLength > 0 {
			d = runLength.String()
		}
		fmt.Fprintf(w, "echo %s | vegeta attack -duration=%s -header %s | vegeta report\n", shellQuote("GET "+target), d, shellQuote(h))
	case "k6":
		fmt.Fprintf(w, `import http from 'k6/http';

// load-test token, expires %s
const params = { headers: { '%s': '%s' } };

export default function () {
  http.get('%s', params);
}
`, exp.UTC().Format(time.RFC3339), hdr, tok, strings.ReplaceAll(target, "'", "\\'"))
	case "env":
		fmt.Fprintf(w, "export SHADOWLANE_TOKEN=%s\nexport SHADOWLANE_TOKEN_HEADER=%s\nexport SHADOWLANE_TOKEN_EXPIRES=%s\n",
			shellQuote(tok), shellQuote(hdr), exp.UTC().Format(time.RFC3339))
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func contains(l []string, s string) bool { return slices.Contains(l, s) }

// signer opens the Runtime that signs a run's tokens with the keys of
// cfgFile (else SHADOWLANE_KEYS): edge trust, no admin endpoint, logs
// discarded. On failure it prints why to stderr and returns nil and the
// exit code; noKeys is the message when there are no keys.
func signer(cfgFile, noKeys string, stderr io.Writer) (*shadowlane.Runtime, int) {
	var cfg shadowlane.Config
	if cfgFile != "" {
		var err error
		if cfg, err = shadowlane.LoadFile(cfgFile); err != nil {
			fmt.Fprintln(stderr, err)
			return nil, exitSetup
		}
	}
	if err := shadowlane.ApplyEnv(&cfg, nil); err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitUsage
	}
	if len(cfg.Trust.Keys) == 0 {
		fmt.Fprintln(stderr, noKeys)
		return nil, exitUsage
	}
	cfg.Trust.Mode = "edge"
	cfg.Admin = shadowlane.AdminConfig{}
	rt, err := shadowlane.New(cfg, shadowlane.WithLogger(discardLogger()))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitViolation
	}
	return rt, exitOK
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
