package loadrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// shop is an httptest server wired with the repo's real edge middleware:
// it counts, per path, the requests its handler saw as load-test traffic
// of which run, and as production.
type shop struct {
	rt      *shadowlane.Runtime
	srv     *httptest.Server
	mu      sync.Mutex
	marked  map[string]int            // path -> requests served with a load-test mark
	prod    map[string]int            // path -> requests served as production
	runs    map[string]int            // run id seen by the handler -> count
	tokens  map[string]bool           // distinct token header values at the door
	carrier map[string]int            // path -> requests whose handler still saw a mark header
	status  func(r *http.Request) int // answer; default 200
}

const testSecret = "0123456789abcdef0123456789abcdef-run-test"

func newShop(t *testing.T) *shop {
	t.Helper()
	rt, err := shadowlane.New(shadowlane.Config{
		Service: "shop",
		Trust:   shadowlane.TrustConfig{Mode: "edge", Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: testSecret}}},
	}, shadowlane.WithoutPropagator(), shadowlane.WithoutDefault(), shadowlane.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	s := &shop{rt: rt, marked: map[string]int{}, prod: map[string]int{}, runs: map[string]int{}, tokens: map[string]bool{}, carrier: map[string]int{}}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := propagation.FromContext(r.Context())
		s.mu.Lock()
		if m.Run != "" {
			s.marked[r.URL.Path]++
			s.runs[m.Run]++
		} else {
			s.prod[r.URL.Path]++
		}
		if r.Header.Get("X-Shadowlane-Run") != "" || r.Header.Get("X-Shadowlane-Token") != "" {
			s.carrier[r.URL.Path]++
		}
		st := s.status
		s.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		if st != nil {
			w.WriteHeader(st(r))
		}
		io.WriteString(w, "ok")
	})
	edge := middleware.Handler(app, middleware.WithRuntime(rt), middleware.Edge())
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get("X-Shadowlane-Token"); tok != "" {
			s.mu.Lock()
			s.tokens[tok] = true
			s.mu.Unlock()
		}
		edge.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.srv.Close(); rt.Close() })
	return s
}

func (s *shop) options(t *testing.T, sc *Scenario, run string) Options {
	names := s.rt.Codec().Names()
	return Options{Scenario: sc, Run: run, Mint: s.rt.Keyring().Sign,
		Headers: Headers{Run: names.RunHeader, Env: names.EnvHeader, Token: names.TokenHeader}}
}

func scenario(t *testing.T, yml string) *Scenario {
	t.Helper()
	sc, err := DecodeScenario([]byte(yml))
	if err != nil {
		t.Fatalf("scenario: %v\n%s", err, yml)
	}
	return sc
}

func shopScenario(base, extra string) string {
	return `
name: shop
seed: 7
targets:
  - name: buy
    method: POST
    url: ` + base + `/buy?n={{.Seq}}
    headers: {Content-Type: application/json, X-Order: "{{.Run}}-{{.Seq}}"}
    body: '{"id":"{{.ID}}","part":{{.Part}}}'
    weight: 4
  - name: probe
    url: ` + base + `/probe
    probe: true
    weight: 1
` + extra
}

// TestRunMarksLoadTestNotProbes: every load-test request reaches the
// handler marked with the run (the edge middleware verified the token), no
// production probe is marked, and no carrier reaches the handler.
func TestRunMarksLoadTestNotProbes(t *testing.T) {
	s := newShop(t)
	sc := scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 500ms, rate: 100}
  - {duration: 1s, rate: 100}
`))
	var res bytes.Buffer
	o := s.options(t, sc, "run-mark-1")
	o.Results = &res
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	buy, probe := target(t, rep, "buy"), target(t, rep, "probe")
	if buy.Sent == 0 || probe.Sent == 0 {
		t.Fatalf("sent buy=%d probe=%d, want both > 0", buy.Sent, probe.Sent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marked["/buy"] != int(buy.Sent) || s.prod["/buy"] != 0 {
		t.Errorf("/buy: handler saw %d marked, %d production; the run sent %d load-test requests", s.marked["/buy"], s.prod["/buy"], buy.Sent)
	}
	if s.marked["/probe"] != 0 || s.prod["/probe"] != int(probe.Sent) {
		t.Errorf("/probe: handler saw %d marked, %d production; the run sent %d probes", s.marked["/probe"], s.prod["/probe"], probe.Sent)
	}
	if len(s.runs) != 1 || s.runs["run-mark-1"] != int(buy.Sent) {
		t.Errorf("runs seen by the handler: %v", s.runs)
	}
	if len(s.carrier) != 0 {
		t.Errorf("mark carriers reached the handler: %v", s.carrier)
	}
	if rep.Errors != 0 || !rep.OK {
		t.Errorf("errors=%d ok=%v aborts=%v statuses=%v", rep.Errors, rep.OK, rep.Aborts, rep.Statuses)
	}
	// Results: one req line per request, sequence numbers distinct.
	lines := readLines(t, &res)
	seqs := map[uint64]bool{}
	n := 0
	for _, l := range lines {
		if l.Kind == "req" {
			n++
			if seqs[l.Seq] {
				t.Errorf("sequence %d twice", l.Seq)
			}
			seqs[l.Seq] = true
		}
	}
	if int64(n) != rep.Sent || lines[0].Kind != "start" || lines[len(lines)-1].Kind != "end" {
		t.Errorf("results: %d req lines for %d sent; first %q last %q", n, rep.Sent, lines[0].Kind, lines[len(lines)-1].Kind)
	}
}

func target(t *testing.T, r *Report, name string) TargetRep {
	t.Helper()
	for _, tr := range r.Targets {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("no target %q in the report", name)
	return TargetRep{}
}

func readLines(t *testing.T, r io.Reader) []Line {
	t.Helper()
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		t.Fatal("no results lines")
	}
	return out
}

// TestRunRefreshesToken: with a 2s token over a 4.5s run, the run
// re-mints it before it expires; the edge refuses none of the load.
func TestRunRefreshesToken(t *testing.T) {
	s := newShop(t)
	sc := scenario(t, shopScenario(s.srv.URL, `
token: {ttl: 2s}
stages:
  - {duration: 4500ms, rate: 40}
`))
	rep, err := Run(context.Background(), s.options(t, sc, "run-refresh-1"))
	if err != nil {
		t.Fatal(err)
	}
	buy := target(t, rep, "buy")
	if rep.TokenMints < 3 {
		t.Errorf("%d tokens minted over 4.5s with a 2s TTL, want >= 3", rep.TokenMints)
	}
	if buy.Errors != 0 || buy.Statuses["403"] != 0 {
		t.Errorf("load-test requests refused: %d errors, statuses %v, errors %v", buy.Errors, buy.Statuses, buy.ErrTop)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) < 2 {
		t.Errorf("the server saw %d distinct tokens, want >= 2", len(s.tokens))
	}
	if s.marked["/buy"] != int(buy.Sent) {
		t.Errorf("handler saw %d marked /buy, the run sent %d", s.marked["/buy"], buy.Sent)
	}
}

// TestRunAbortsOnErrorRate: a service failing every request stops the
// run early, with the reason in the report.
func TestRunAbortsOnErrorRate(t *testing.T) {
	s := newShop(t)
	s.status = func(r *http.Request) int {
		if r.URL.Path == "/buy" {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	sc := scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 20s, rate: 50}
abort: {errorRate: 0.2, window: 2s, minRequests: 10}
`))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := s.options(t, sc, "run-abort-1")
	o.Progress = func(p Progress) { t.Logf("%+v", p) }
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Aborts) != 1 || !strings.Contains(rep.Aborts[0].Reason, "error rate") {
		t.Fatalf("ok=%v aborts=%+v, want one error-rate abort", rep.OK, rep.Aborts)
	}
	if float64(rep.Sent) >= rep.Asked*0.9 {
		t.Errorf("sent %d of %.0f asked: the abort did not stop the run early", rep.Sent, rep.Asked)
	}
	if target(t, rep, "buy").Statuses["500"] == 0 {
		t.Errorf("no 500 counted")
	}
}

// TestRunPartsMerge: two parts of one run, each half the rate with its
// own sequence space; the merged report is the sum of the parts.
func TestRunPartsMerge(t *testing.T) {
	s := newShop(t)
	sc := scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 1500ms, rate: 120}
`))
	dir := t.TempDir()
	reps := make([]*Report, 2)
	files := make([]string, 2)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for i := range 2 {
		files[i] = filepath.Join(dir, "part"+itoa(uint64(i+1))+".jsonl")
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Create(files[i])
			if err != nil {
				t.Error(err)
				failed.Store(true)
				return
			}
			defer f.Close()
			o := s.options(t, sc, "run-parts-1")
			o.Part, o.Parts, o.Results = i+1, 2, f
			if reps[i], err = Run(context.Background(), o); err != nil {
				t.Error(err)
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		t.FailNow()
	}
	agg := NewAggregator()
	for _, f := range files {
		if err := ReadResults(f, agg); err != nil {
			t.Fatal(err)
		}
	}
	m := agg.Report()
	if len(m.Parts) != 2 || m.Run != "run-parts-1" {
		t.Fatalf("merged parts %+v run %q", m.Parts, m.Run)
	}
	if m.Sent != reps[0].Sent+reps[1].Sent || m.Errors != reps[0].Errors+reps[1].Errors {
		t.Errorf("merged sent %d errors %d, parts %d+%d, %d+%d", m.Sent, m.Errors, reps[0].Sent, reps[1].Sent, reps[0].Errors, reps[1].Errors)
	}
	if d := m.Asked - (reps[0].Asked + reps[1].Asked); d > 1e-6 || d < -1e-6 {
		t.Errorf("merged asked %.2f, parts %.2f + %.2f", m.Asked, reps[0].Asked, reps[1].Asked)
	}
	if want := 120 * 1.5 / 2 / 2; reps[0].Asked < want-1 || reps[0].Asked > want+1 {
		t.Errorf("part 1 asked %.1f, want half of the stages' %v", reps[0].Asked, 120*1.5/2)
	}
	for _, name := range []string{"buy", "probe"} {
		mt, a, b := target(t, m, name), target(t, reps[0], name), target(t, reps[1], name)
		if mt.Sent != a.Sent+b.Sent {
			t.Errorf("%s: merged %d, parts %d+%d", name, mt.Sent, a.Sent, b.Sent)
		}
		for c, n := range mt.Statuses {
			if n != a.Statuses[c]+b.Statuses[c] {
				t.Errorf("%s status %s: merged %d, parts %d+%d", name, c, n, a.Statuses[c], b.Statuses[c])
			}
		}
		var sum int64
		for _, v := range mt.Series.Sent {
			sum += v
		}
		if sum != mt.Sent {
			t.Errorf("%s: series sums to %d, sent %d", name, sum, mt.Sent)
		}
	}
	// Distinct sequence spaces: part 1 even, part 2 odd, none shared.
	seen := map[uint64]int{}
	for i, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range readLines(t, fh) {
			if l.Kind != "req" {
				continue
			}
			if int(l.Seq%2) != i {
				t.Errorf("part %d sent sequence %d", i+1, l.Seq)
			}
			if p, dup := seen[l.Seq]; dup {
				t.Errorf("sequence %d sent by parts %d and %d", l.Seq, p, i+1)
			}
			seen[l.Seq] = i + 1
		}
		fh.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marked["/buy"] != int(target(t, m, "buy").Sent) {
		t.Errorf("handler saw %d marked /buy, merged report %d", s.marked["/buy"], target(t, m, "buy").Sent)
	}
	// Merging the same part twice, or parts of different runs, is refused.
	agg2 := NewAggregator()
	if err := ReadResults(files[0], agg2); err != nil {
		t.Fatal(err)
	}
	if err := ReadResults(files[0], agg2); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("the same part twice: %v", err)
	}
}

// TestRunEvidenceAndLeakAbort: the run reads each service's evidence
// before and after; a service reporting a production write of the run's
// traffic (an error of kind leak) aborts it.
func TestRunEvidenceAndLeakAbort(t *testing.T) {
	s := newShop(t)
	var leak atomic.Bool
	var reads atomic.Int64
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := r.URL.Query().Get("run")
		k := reads.Add(1)
		s.mu.Lock()
		n := s.marked["/buy"]
		s.mu.Unlock()
		dec := `{"store":"sql","target":"orders","decision":"redirect","to":"orders_shadow","n":` + itoa(uint64(n)) + `}`
		errs := ""
		if leak.Load() {
			errs = `{"reason":"leak: a marked write reached production","n":` + itoa(uint64(k)) + `}`
		}
		io.WriteString(w, `{"service":"orders","env":"","instance":"h:1","run":"`+run+`","known":true,"entries":[{"entry":"http","route":"POST /buy","marked":`+itoa(uint64(n))+`}],"decisions":[`+dec+`],"errors":[`+errs+`]}`)
	}))
	defer admin.Close()
	sc := scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 1s, rate: 50}
`))
	o := s.options(t, sc, "run-evidence-1")
	o.Services = []string{admin.URL}
	o.EvidencePoll = 100 * time.Millisecond
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Services) != 1 || rep.Services[0].Err != "" {
		t.Fatalf("ok=%v services=%+v aborts=%v", rep.OK, rep.Services, rep.Aborts)
	}
	buy := target(t, rep, "buy")
	want := "orders@trunk: " + itoa(uint64(buy.Sent)) + " load-test SQL statements " + itoa(uint64(buy.Sent)) + " -> orders_shadow (redirect), 0 to production, 0 refused"
	if !slicesContains(rep.Services[0].Lines, want) {
		t.Errorf("evidence lines %q lack %q", rep.Services[0].Lines, want)
	}

	leak.Store(true)
	sc = scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 20s, rate: 20}
`))
	o = s.options(t, sc, "run-evidence-2")
	o.Services = []string{admin.URL}
	o.EvidencePoll = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err = Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Aborts) != 1 || !strings.Contains(rep.Aborts[0].Reason, "leak alarm from orders@trunk") || len(rep.Leaks) == 0 {
		t.Fatalf("ok=%v aborts=%+v leaks=%v, want a leak abort", rep.OK, rep.Aborts, rep.Leaks)
	}
	if float64(rep.Sent) >= rep.Asked*0.9 {
		t.Errorf("sent %d of %.0f: the leak alarm did not stop the run early", rep.Sent, rep.Asked)
	}
}

func slicesContains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestRunShowsRefusals: a token the service does not accept (signed with
// another key) gets every load-test request refused; the report says why,
// and the probes are served as production.
func TestRunShowsRefusals(t *testing.T) {
	s := newShop(t)
	other, err := shadowlane.New(shadowlane.Config{Trust: shadowlane.TrustConfig{Keys: []shadowlane.KeyConfig{{ID: "k1", Secret: "another-secret-another-secret-another-secret"}}}},
		shadowlane.WithoutPropagator(), shadowlane.WithoutDefault(), shadowlane.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sc := scenario(t, shopScenario(s.srv.URL, `
stages:
  - {duration: 1s, from: 30, rate: 30}
`))
	o := s.options(t, sc, "run-refused-1")
	o.Mint = other.Keyring().Sign
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	buy, probe := target(t, rep, "buy"), target(t, rep, "probe")
	if buy.Sent == 0 || buy.Statuses["403"] != buy.Sent || buy.Errors != buy.Sent {
		t.Fatalf("buy: sent %d statuses %v errors %d, want all 403", buy.Sent, buy.Statuses, buy.Errors)
	}
	if len(buy.ErrTop) == 0 || !strings.Contains(buy.ErrTop[0].Err, "403 refused by shadowlane: ") {
		t.Errorf("errors %+v lack the refusal reason", buy.ErrTop)
	}
	if probe.Errors != 0 {
		t.Errorf("probes failed: %+v", probe)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marked["/buy"] != 0 || s.prod["/buy"] != 0 {
		t.Errorf("a refused request reached the handler: marked %d production %d", s.marked["/buy"], s.prod["/buy"])
	}
}
