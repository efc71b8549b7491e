package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/evidence"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/loadrun"
)

// cmdRun is `shadowlane run [flags] SCENARIO.yaml`: a pressure test of
// the team's own HTTP entry points.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shadowlane run [flags] SCENARIO.yaml")
		fs.PrintDefaults()
	}
	runID := fs.String("run", "", "run id (default: the scenario's run, else run-YYYYMMDD-HHMMSS; required with --part)")
	cfgFile := configFlag(fs, "config file holding trust.keys to mint the run's token (else SHADOWLANE_KEYS)")
	services := fs.String("services", "", "comma-separated admin URLs of the services (http://host:9464,...): their per-run evidence is read before and after the run, and a leak alarm aborts it")
	partFlag := fs.String("part", "1/1", "this machine's part i/n of a run spread over n load machines: 1/n of the rate, its own sequence and id space")
	out := fs.String("out", "run-report", "directory for results*.jsonl, report.json and index.html")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of the text summary")
	poll := fs.Duration("evidence-poll", 5*time.Second, "how often --services are polled for leak alarms during the run")
	scenarioPath, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if scenarioPath == "" {
		fmt.Fprintln(stderr, "shadowlane run: give the scenario file: shadowlane run [flags] SCENARIO.yaml")
		return exitUsage
	}
	part, parts, err := parsePart(*partFlag)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane run:", err)
		return exitUsage
	}
	if *poll <= 0 {
		fmt.Fprintln(stderr, "shadowlane run: --evidence-poll must be positive")
		return exitUsage
	}
	sc, err := loadrun.LoadScenario(scenarioPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	run := *runID
	if run == "" {
		run = sc.Run
	}
	if run == "" {
		if parts > 1 {
			fmt.Fprintln(stderr, "shadowlane run: --part needs the same --run id on every machine (or run: in the scenario)")
			return exitUsage
		}
		run = "run-" + time.Now().UTC().Format("20060102-150405")
	}
	var svcs []string
	for _, s := range strings.Split(*services, ",") {
		if s = strings.TrimSpace(s); s != "" {
			svcs = append(svcs, s)
		}
	}

	// The token: signed with the config's keys, as `shadowlane token` does.
	rt, code := signer(*cfgFile, "shadowlane run: no keys to mint the run's token: give --config with trust.keys, or SHADOWLANE_KEYS=id=secret", stderr)
	if rt == nil {
		return code
	}
	defer rt.Close()
	names := rt.Codec().Names()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(stderr, "shadowlane run:", err)
		return exitSetup
	}
	resName := "results.jsonl"
	if parts > 1 {
		resName = fmt.Sprintf("results-part-%d-of-%d.jsonl", part, parts)
	}
	resPath := filepath.Join(*out, resName)
	rf, err := os.Create(resPath)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane run:", err)
		return exitSetup
	}
	defer rf.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stderr, "shadowlane run %s: scenario %s, part %d/%d, %s of stages, token ttl %s (re-minted at 2/3), results %s\n",
		run, sc.Name, part, parts, sc.Duration(), sc.Token.TTL, resPath)
	rep, err := loadrun.Run(ctx, loadrun.Options{
		Scenario: sc, Run: run, Part: part, Parts: parts,
		Mint:     rt.Keyring().Sign,
		Headers:  loadrun.Headers{Run: names.RunHeader, Env: names.EnvHeader, Token: names.TokenHeader},
		Services: svcs, EvidencePoll: *poll, Results: rf,
		Progress: progressPrinter(stderr),
	})
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane run:", err)
		if errors.Is(err, loadrun.ErrSetup) || rep == nil {
			return exitSetup
		}
	}
	if err := rf.Close(); err != nil {
		fmt.Fprintln(stderr, "shadowlane run:", err)
		return exitSetup
	}
	return writeRunReport(rep, *out, resPath, *asJSON, stdout, stderr)
}

func writeRunReport(rep *loadrun.Report, dir, resPath string, asJSON bool, stdout, stderr io.Writer) int {
	html, err := rep.WriteDir(dir)
	if err != nil {
		fmt.Fprintln(stderr, "shadowlane:", err)
		return exitSetup
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return exitSetup
		}
	} else {
		writeRunSummary(stdout, rep)
		if resPath != "" {
			fmt.Fprintf(stdout, "results: %s\n", resPath)
		}
		fmt.Fprintf(stdout, "report: %s (and %s)\n", html, filepath.Join(dir, "report.json"))
	}
	if !rep.OK {
		return exitViolation
	}
	return exitOK
}

func writeRunSummary(w io.Writer, r *loadrun.Report) {
	state := "completed"
	switch {
	case len(r.Leaks) > 0:
		state = "LEAK ALARM"
	case len(r.Aborts) > 0:
		state = "ABORTED"
	}
	partsNote := ""
	if len(r.Parts) > 0 && r.Parts[0].Parts > 1 {
		partsNote = fmt.Sprintf(", %d of %d parts", len(r.Parts), r.Parts[0].Parts)
	}
	fmt.Fprintf(w, "run %s (scenario %s%s): %s\n", r.Run, r.Scenario, partsNote, state)
	fmt.Fprintf(w, "  sent %s of %s asked in %.1fs: %.1f/s achieved, %.1f/s asked; %s failed; %s production probes; %d token(s) minted\n",
		evidence.Group(r.Sent), evidence.Group(int64(r.Asked+0.5)), r.DurationMs/1000, r.SentRPS, r.AskedRPS, evidence.Group(r.Errors), evidence.Group(r.Probes), r.TokenMints)
	for _, t := range r.Targets {
		kind := "load test"
		if t.Probe {
			kind = "production probe"
		}
		codes := slices.Sorted(func(yield func(string) bool) {
			for c := range t.Statuses {
				if !yield(c) {
					return
				}
			}
		})
		var cs []string
		for _, c := range codes {
			cs = append(cs, c+"x"+evidence.Group(t.Statuses[c]))
		}
		fmt.Fprintf(w, "  %s (%s): %s sent, %.1f/s, %s failed, p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms, statuses %s\n",
			t.Name, kind, evidence.Group(t.Sent), t.RPS, evidence.Group(t.Errors), t.P50, t.P90, t.P99, t.Max, strings.Join(cs, " "))
		for _, e := range t.ErrTop {
			fmt.Fprintf(w, "    error x%s: %s\n", evidence.Group(e.N), e.Err)
		}
	}
	for _, a := range r.Aborts {
		fmt.Fprintf(w, "  aborted at %.1fs (part %d): %s\n", a.AtMs/1000, a.Part, a.Reason)
	}
	if len(r.Services) > 0 {
		fmt.Fprintln(w, "  services:")
	}
	for _, s := range r.Services {
		if s.Err != "" {
			fmt.Fprintf(w, "    %s: unreadable: %s\n", s.URL, s.Err)
		}
		for _, l := range s.Lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
		for _, l := range s.Leaks {
			fmt.Fprintf(w, "    LEAK %s: %s\n", s.Label, l)
		}
	}
}

// progressPrinter shows the progress on a terminal (one line, rewritten)
// and as a plain line every 5s otherwise.
func progressPrinter(w io.Writer) func(loadrun.Progress) {
	f, ok := w.(*os.File)
	tty := ok && isTerminal(f)
	return func(p loadrun.Progress) {
		line := fmt.Sprintf("%5.0fs/%.0fs answered %s (%.0f/s, asked %.0f/s) failed %s, p99 %s over %d", p.Elapsed.Seconds(), p.Total.Seconds(),
			evidence.Group(p.Sent), p.Rate, p.AskedRate, evidence.Group(p.Errors), p.P99.Round(10*time.Microsecond), p.Window)
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
			if p.Elapsed >= p.Total {
				fmt.Fprint(w, "\r\033[K")
			}
			return
		}
		if int(p.Elapsed.Seconds()+0.5)%5 == 0 {
			fmt.Fprintln(w, line)
		}
	}
}

// cmdReport is `shadowlane report merge [--out DIR] FILE...`.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "merge" {
		fmt.Fprintln(stderr, "usage: shadowlane report merge [--out DIR] [--json] RESULTS.jsonl...")
		return exitUsage
	}
	fs := newFlagSet("report merge", stderr)
	out := fs.String("out", "run-report-merged", "directory for the merged report.json and index.html")
	asJSON := fs.Bool("json", false, "print the merged report as JSON instead of the text summary")
	files, err := parseInterleavedAll(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "shadowlane report merge: give the results files of the parts")
		return exitUsage
	}
	agg := loadrun.NewAggregator()
	for _, f := range files {
		if err := loadrun.ReadResults(f, agg); err != nil {
			fmt.Fprintln(stderr, "shadowlane report merge:", err)
			return exitSetup
		}
	}
	rep := agg.Report()
	if n := len(rep.Parts); n > 0 && n != rep.Parts[0].Parts {
		fmt.Fprintf(stderr, "shadowlane report merge: warning: %d of %d parts given\n", n, rep.Parts[0].Parts)
	}
	return writeRunReport(rep, *out, "", *asJSON, stdout, stderr)
}

// parseInterleaved parses flags given before or after the one positional
// argument.
func parseInterleaved(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseInterleavedAll(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) > 1 {
		fmt.Fprintf(fs.Output(), "%s: one scenario file, got %q\n", fs.Name(), pos)
		return "", errors.New("too many arguments")
	}
	if len(pos) == 0 {
		return "", nil
	}
	return pos[0], nil
}

func parseInterleavedAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parsePart reads "i/n" with 1 <= i <= n.
func parsePart(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n || n > 10000 {
		return 0, 0, fmt.Errorf("--part %q: want i/n with 1 <= i <= n, e.g. 2/4", s)
	}
	return i, n, nil
}
