package loadrun

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodScenario = `
name: s
targets:
  - name: a
    url: http://127.0.0.1:1/x?i={{.Seq}}
    body: '{"id":"{{.ID}}","r":{{.Rand 10}},"u":"{{.UUID}}"}'
stages:
  - {duration: 2s, rate: 10}
  - {duration: 1s, rate: 0}
`

func TestDecodeScenario(t *testing.T) {
	s, err := DecodeScenario([]byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration() != 3*time.Second || s.Targets[0].Method != "GET" || s.Targets[0].Weight != 1 || s.Token.TTL != 10*time.Minute || s.Bucket != time.Second {
		t.Errorf("defaults: %+v", s)
	}
	if !s.Abort.LeakAborts() {
		t.Error("leak aborts by default")
	}
}

func TestDecodeScenarioErrors(t *testing.T) {
	for _, c := range []struct{ name, yml, want string }{
		{"unknown field", "targets:\n  - name: a\n    url: http://h/\n    methd: GET\nstages: [{duration: 1s, rate: 1}]\n", "line 4"},
		{"unknown field named", "targets:\n  - name: a\n    url: http://h/\n    methd: GET\nstages: [{duration: 1s, rate: 1}]\n", `unknown field "methd"`},
		{"duplicate key", "targets: []\ntargets: []\n", `duplicate key "targets"`},
		{"bad duration", "targets: [{name: a, url: 'http://h/'}]\nstages:\n  - {duration: soon, rate: 1}\n", "line 3"},
		{"no targets", "stages: [{duration: 1s, rate: 1}]\n", "targets: at least one target"},
		{"no stages", "targets: [{name: a, url: 'http://h/'}]\n", "stages: at least one stage"},
		{"relative url", "targets:\n  - name: a\n    url: /buy\nstages: [{duration: 1s, rate: 1}]\n", "line 3, column 10: targets[0].url"},
		{"bad template", "targets:\n  - name: a\n    url: http://h/\n    body: '{{.Nope}}'\nstages: [{duration: 1s, rate: 1}]\n", "targets[0].body"},
		{"unclosed template", "targets:\n  - name: a\n    url: http://h/{{.Seq\nstages: [{duration: 1s, rate: 1}]\n", "targets[0].url"},
		{"mark header", "targets:\n  - name: a\n    url: http://h/\n    headers: {X-Shadowlane-Token: x}\nstages: [{duration: 1s, rate: 1}]\n", "mark headers"},
		{"only probes", "targets: [{name: a, url: 'http://h/', probe: true}]\nstages: [{duration: 1s, rate: 1}]\n", "every target is a probe"},
		{"dup name", "targets: [{name: a, url: 'http://h/'}, {name: a, url: 'http://h/'}]\nstages: [{duration: 1s, rate: 1}]\n", "already names targets[0]"},
		{"negative rate", "targets: [{name: a, url: 'http://h/'}]\nstages: [{duration: 1s, rate: -1}]\n", "stages[0].rate"},
		{"error rate", "targets: [{name: a, url: 'http://h/'}]\nstages: [{duration: 1s, rate: 1}]\nabort: {errorRate: 5}\n", "abort.errorRate"},
		{"short ttl", "token: {ttl: 1s}\ntargets: [{name: a, url: 'http://h/'}]\nstages: [{duration: 1s, rate: 1}]\n", "token.ttl"},
		{"two docs", "targets: []\n---\nstages: []\n", "second YAML document"},
		{"tab", "targets:\n\t- name: a\n", "line 2"},
		{"empty", "", "empty scenario"},
		{"bad run", "run: 'a b'\ntargets: [{name: a, url: 'http://h/'}]\nstages: [{duration: 1s, rate: 1}]\n", "not a run id"},
	} {
		_, err := DecodeScenario([]byte(c.yml))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var se *ScenarioError
		if !errors.As(err, &se) {
			t.Errorf("%s: %T is not a *ScenarioError: %v", c.name, err, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q lacks %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeScenario: the decoder never panics; what it accepts runs
// (positive duration, every target's templates execute).
func FuzzDecodeScenario(f *testing.F) {
	f.Add([]byte(goodScenario))
	f.Add([]byte("targets: [{name: a, url: 'http://h/{{.Rand 5}}', headers: {A: '{{.Run}}'}}]\nstages: [{duration: 1s, rate: 1}]\n"))
	f.Add([]byte("targets:\n  - &t {name: a, url: 'http://h/'}\n  - <<: *t\n    name: b\nstages: [{duration: 1s, rate: 1}]\n"))
	f.Add([]byte("stages: [{duration: 1s, rate: 1e400}]\n"))
	f.Add([]byte("targets: [{name: a, url: 'http://h/{{template \"x\"}}'}]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeScenario(data)
		if err != nil {
			return
		}
		if s.Duration() <= 0 || len(s.Targets) == 0 {
			t.Fatalf("accepted a scenario without duration or targets: %q", data)
		}
		for i := range s.Targets {
			tg := &s.Targets[i]
			v := newVars(1, 2, "r", 1, tg.Name, time.Unix(0, 0))
			if _, err := execTmpl(tg.url, tg.URL, v); err != nil {
				t.Fatalf("url template of an accepted scenario fails: %v", err)
			}
			if _, err := execTmpl(tg.body, tg.Body, v); err != nil {
				t.Fatalf("body template of an accepted scenario fails: %v", err)
			}
		}
	})
}

func TestStagePacerExpected(t *testing.T) {
	p := newStagePacer([]Stage{{2 * time.Second, 100}, {2 * time.Second, 100}, {time.Second, 0}}, 1)
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{time.Second, 25}, {2 * time.Second, 100}, {3 * time.Second, 200}, {4 * time.Second, 300}, {5 * time.Second, 350}, {9 * time.Second, 350}} {
		if got := p.Expected(c.at); got < c.want-1 || got > c.want+1 {
			t.Errorf("expected hits at %s: %.1f, want %.0f", c.at, got, c.want)
		}
	}
	half := newStagePacer([]Stage{{2 * time.Second, 100}}, 2)
	if got := half.Expected(2 * time.Second); got < 49 || got > 51 {
		t.Errorf("part of 2: %.1f, want 50 (a ramp from 0 to 50/s over 2s)", got)
	}
}

// TestStagePacerPaces drives the pacer on a simulated clock that sends
// each hit exactly when due: the count at every point follows the stages.
func TestStagePacerPaces(t *testing.T) {
	for _, stages := range [][]Stage{
		{{time.Second, 5}},
		{{20 * time.Second, 50}},
		{{2 * time.Second, 100}, {2 * time.Second, 100}, {time.Second, 0}},
		{{time.Second, 10}, {time.Second, 0}, {time.Second, 0}, {time.Second, 30}},
		{{time.Second, 2.5}, {3 * time.Second, 2.5}},
	} {
		p := newStagePacer(stages, 1)
		var el time.Duration
		var hits uint64
		for steps := 0; steps < 100000; steps++ {
			w, stop := p.Pace(el, hits)
			if stop {
				break
			}
			el += w
			hits++
			if exp := p.Expected(el); float64(hits) > exp+1.5 || float64(hits) < exp-1.5 {
				t.Fatalf("%v: at %s %d hits, the stages ask for %.1f", stages, el, hits, exp)
			}
		}
		if want := p.Expected(p.end); float64(hits) < want-1.5 || float64(hits) > want+1.5 {
			t.Errorf("%v: %d hits in all, the stages ask for %.1f", stages, hits, want)
		}
	}
}
