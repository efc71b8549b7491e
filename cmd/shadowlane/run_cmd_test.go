package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/loadrun"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// TestRunCommandPartsAndMerge runs `shadowlane run` as two parts of one
// run against a server behind the edge middleware, then `report merge`:
// the merged report counts what the server's handler saw, all marked.
func TestRunCommandPartsAndMerge(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-cli"
	t.Setenv("SHADOWLANE_KEYS", "k1="+secret)
	t.Setenv("SHADOWLANE_CONFIG", "")
	rt, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: secret}}}},
		shadowlane.WithoutPropagator(), shadowlane.WithoutDefault(), shadowlane.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var marked, prod atomic.Int64
	srv := httptest.NewServer(middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if propagation.FromContext(r.Context()).Run == "cli-run-1" {
			marked.Add(1)
		} else {
			prod.Add(1)
		}
	}), middleware.WithRuntime(rt), middleware.Edge()))
	defer srv.Close()
	dir := t.TempDir()
	scen := filepath.Join(dir, "s.yaml")
	os.WriteFile(scen, []byte("targets:\n  - {name: buy, method: POST, url: '"+srv.URL+"/buy/{{.Seq}}', body: '{{.ID}}'}\n  - {name: probe, url: '"+srv.URL+"/', probe: true, weight: 1}\nstages: [{duration: 1s, rate: 40}]\n"), 0o644)

	var files []string
	for _, part := range []string{"1/2", "2/2"} {
		out := filepath.Join(dir, "p"+part[:1])
		var so, se strings.Builder
		if code := run([]string{"run", "--run", "cli-run-1", "--part", part, "--out", out, scen}, &so, &se); code != exitOK {
			t.Fatalf("run --part %s: exit %d\n%s%s", part, code, so.String(), se.String())
		}
		if !strings.Contains(so.String(), "run cli-run-1 (scenario s, 1 of 2 parts): completed") {
			t.Errorf("summary: %s", so.String())
		}
		files = append(files, filepath.Join(out, "results-part-"+part[:1]+"-of-2.jsonl"))
	}
	merged := filepath.Join(dir, "merged")
	var so, se strings.Builder
	if code := run(append([]string{"report", "merge", "--out", merged}, files...), &so, &se); code != exitOK {
		t.Fatalf("report merge: exit %d\n%s%s", code, so.String(), se.String())
	}
	raw, err := os.ReadFile(filepath.Join(merged, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep loadrun.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(merged, "index.html")); err != nil {
		t.Error(err)
	}
	if len(rep.Parts) != 2 || rep.Sent != marked.Load()+prod.Load() || rep.Sent-rep.Probes != marked.Load() || rep.Probes != prod.Load() || rep.Errors != 0 {
		t.Errorf("merged: parts %d sent %d probes %d errors %d; server: %d marked, %d production", len(rep.Parts), rep.Sent, rep.Probes, rep.Errors, marked.Load(), prod.Load())
	}
}

func TestRunCommandUsage(t *testing.T) {
	t.Setenv("SHADOWLANE_KEYS", "k1=0123456789abcdef0123456789abcdef-cli")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("targets:\n  - name: a\n    url: http://h/\n    methd: GET\nstages: [{duration: 1s, rate: 1}]\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("targets: [{name: a, url: 'http://127.0.0.1:1/'}]\nstages: [{duration: 1s, rate: 1}]\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "give the scenario file"},
		{[]string{"run", bad}, `line 4: unknown field "methd"`},
		{[]string{"run", "--part", "3/2", good}, "--part"},
		{[]string{"run", "--part", "1/2", good}, "same --run id"},
		{[]string{"report"}, "report merge"},
		{[]string{"report", "merge"}, "give the results files"},
	} {
		var so, se strings.Builder
		if code := run(c.args, &so, &se); code != exitUsage || !strings.Contains(se.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %d and %q", c.args, code, se.String(), exitUsage, c.want)
		}
	}
}

// TestExampleScenarioDecodes: the README's example scenario file is valid.
func TestExampleScenarioDecodes(t *testing.T) {
	sc, err := loadrun.LoadScenario("testdata/run/checkout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "checkout" || len(sc.Targets) != 3 || len(sc.Stages) != 3 {
		t.Errorf("example scenario: %+v", sc)
	}
}
