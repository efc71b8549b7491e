package loadrun

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shadowlane/shadowlane/internal/cfgfile"
)

// MaxScenarioSize is the largest scenario file Decode accepts.
const MaxScenarioSize = 1 << 20

// Scenario is a pressure test: what to send, how fast, and when to stop.
type Scenario struct {
	Name    string        `yaml:"name"`    // shown in the report; default: the file name
	Run     string        `yaml:"run"`     // run id; --run overrides; default generated
	Seed    uint64        `yaml:"seed"`    // seeds the random ids and the target mix
	Token   TokenSpec     `yaml:"token"`   // how the run's token is minted
	HTTP    HTTPSpec      `yaml:"http"`    // client settings
	Targets []Target      `yaml:"targets"` // at least one
	Stages  []Stage       `yaml:"stages"`  // at least one
	Abort   AbortSpec     `yaml:"abort"`
	Bucket  time.Duration `yaml:"bucket"` // report time resolution; default 1s
}

// TokenSpec says how the run mints its load-test token.
type TokenSpec struct {
	Env string        `yaml:"env"` // bind the token to this env tag (optional)
	TTL time.Duration `yaml:"ttl"` // validity of one token; default 10m, at least 2s; refreshed at 2/3 of it
}

// HTTPSpec holds the client settings.
type HTTPSpec struct {
	Timeout     time.Duration `yaml:"timeout"`     // per request; default 10s
	MaxInFlight int           `yaml:"maxInFlight"` // cap on concurrent requests (0: none, a true open model)
	Insecure    bool          `yaml:"insecure"`    // skip TLS verification
}

// Target is one HTTP entry point. URL, header values and the body are Go
// templates executed per request with [Vars].
type Target struct {
	Name string `yaml:"name"`
	// Kind is "http" (the default) or "grpc": a unary gRPC call whose
	// request and response types the server's reflection service gives
	// (grpc.go). For grpc, URL is grpc://host:port, Method the full method
	// ("shop.Orders/Place"), Body the request in JSON (protojson) and
	// Headers go as metadata.
	Kind    string            `yaml:"kind"`
	Method  string            `yaml:"method"` // default GET
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	Weight  int               `yaml:"weight"` // share of the mix; default 1
	// Probe: a production probe, sent without any mark (it must be served
	// as production: the report shows how production fares during the test).
	Probe bool `yaml:"probe"`

	url, body *template.Template
	headers   []headerTmpl
}

type headerTmpl struct {
	name string
	tmpl *template.Template
}

// Stage is one segment of the arrival rate: from From (default: the
// previous stage's rate, 0 before the first) to Rate over Duration,
// linearly. {duration: 1m, rate: 100} after a stage at 100 holds 100/s;
// as the first stage it ramps up from 0; {duration: 1m, from: 100, rate:
// 100} holds 100/s from the start.
type Stage struct {
	Duration time.Duration `yaml:"duration" json:"duration"`
	Rate     float64       `yaml:"rate" json:"rate"`                     // requests per second at the end of the stage (all targets)
	From     *float64      `yaml:"from,omitempty" json:"from,omitempty"` // requests per second at its start
}

// AbortSpec stops the run early. Error rate and p99 are evaluated every
// second over the last Window of finished load-test requests, once
// MinRequests are in the window.
type AbortSpec struct {
	ErrorRate   float64       `yaml:"errorRate"`   // fraction 0..1 of failed requests (error or status >= 400); 0: off
	P99         time.Duration `yaml:"p99"`         // 0: off
	Window      time.Duration `yaml:"window"`      // default 10s
	MinRequests int           `yaml:"minRequests"` // default 20
	// Leak: abort when a service reports a leak alarm (with --services);
	// default true.
	Leak *bool `yaml:"leak"`
}

// LeakAborts reports whether a leak alarm stops the run.
func (a AbortSpec) LeakAborts() bool { return a.Leak == nil || *a.Leak }

// hasGRPC reports whether a target is a gRPC one.
func (s *Scenario) hasGRPC() bool {
	for _, t := range s.Targets {
		if t.Kind == "grpc" {
			return true
		}
	}
	return false
}

// Duration is the sum of the stages.
func (s *Scenario) Duration() time.Duration {
	var d time.Duration
	for _, st := range s.Stages {
		d += st.Duration
	}
	return d
}

// ScenarioError is one problem in a scenario file: where (line, column,
// field path such as "targets[1].url") and what.
type ScenarioError struct {
	Line, Col int
	Field     string
	Msg       string
}

func (e *ScenarioError) Error() string {
	s := "scenario "
	if where := cfgfile.Where(e.Line, e.Col); where != "" {
		s += where + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// LoadScenario reads and decodes a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxScenarioSize+1))
	if err != nil {
		return nil, err
	}
	s, err := DecodeScenario(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(strings.TrimSuffix(baseName(path), ".yaml"), ".yml")
	}
	return s, nil
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

var (
	yamlLineRE  = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	notFoundRE  = regexp.MustCompile(`field (\S+) not found in type`)
	duplicateRE = regexp.MustCompile(`mapping key "([^"]*)" already defined at line (\d+)`)
	runIDRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// DecodeScenario decodes and validates a scenario strictly (one document,
// no unknown field, no duplicate key). Every error is a *ScenarioError
// (several are joined with errors.Join).
func DecodeScenario(data []byte) (*Scenario, error) {
	if len(data) > MaxScenarioSize {
		return nil, &ScenarioError{Msg: fmt.Sprintf("file larger than %d bytes", MaxScenarioSize)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ScenarioError{Msg: "empty scenario: it needs targets and stages"}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err)
		}
		return nil, &ScenarioError{Line: extra.Line, Col: extra.Column, Msg: "a second YAML document; a scenario is one document"}
	}
	idx := map[string]*yaml.Node{}
	indexPaths(&root, "", idx)
	var s Scenario
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&s); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, yamlError(err)
		}
		errs := make([]error, 0, len(te.Errors))
		for _, m := range te.Errors {
			e := yamlError(errors.New(m))
			if mm := notFoundRE.FindStringSubmatch(e.Msg); mm != nil {
				e.Msg = fmt.Sprintf("unknown field %q", mm[1])
			} else if mm := duplicateRE.FindStringSubmatch(e.Msg); mm != nil {
				e.Msg = fmt.Sprintf("duplicate key %q (first at line %s)", mm[1], mm[2])
			}
			errs = append(errs, e)
		}
		return nil, errors.Join(errs...)
	}
	if errs := s.validate(); len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			if n := idx[e.Field]; n != nil {
				e.Line, e.Col = n.Line, n.Column
			}
			out[i] = e
		}
		return nil, errors.Join(out...)
	}
	return &s, nil
}

func yamlError(err error) *ScenarioError {
	e := &ScenarioError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = err.Error()[len(m[0]):]
	}
	return e
}

// indexPaths maps each field path ("targets[0].url") to its value node.
func indexPaths(n *yaml.Node, path string, idx map[string]*yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexPaths(c, path, idx)
		}
	case yaml.MappingNode:
		idx[path] = n
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, seen := idx[p]; !seen {
				idx[p] = v
				if v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode {
					idx[p] = &yaml.Node{Line: v.Line, Column: v.Column}
				}
			}
			indexPaths(v, p, idx)
		}
	case yaml.SequenceNode:
		idx[path] = n
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			idx[p] = c
			indexPaths(c, p, idx)
		}
	}
}

var methods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

// validate sets defaults, parses the templates and returns every problem.
func (s *Scenario) validate() []*ScenarioError {
	var errs []*ScenarioError
	bad := func(field, format string, a ...any) {
		errs = append(errs, &ScenarioError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if s.Run != "" && !runIDRE.MatchString(s.Run) {
		bad("run", "%q is not a run id ([A-Za-z0-9_-]{1,64})", s.Run)
	}
	if s.Token.Env != "" && !runIDRE.MatchString(s.Token.Env) {
		bad("token.env", "%q is not an env tag ([A-Za-z0-9_-]{1,64})", s.Token.Env)
	}
	switch {
	case s.Token.TTL == 0:
		s.Token.TTL = 10 * time.Minute
	case s.Token.TTL < 2*time.Second:
		bad("token.ttl", "%s is too short: at least 2s (tokens expire on whole seconds)", s.Token.TTL)
	}
	switch {
	case s.HTTP.Timeout == 0:
		s.HTTP.Timeout = 10 * time.Second
	case s.HTTP.Timeout < 0:
		bad("http.timeout", "must be positive")
	}
	if s.HTTP.MaxInFlight < 0 {
		bad("http.maxInFlight", "must be >= 0")
	}
	switch {
	case s.Bucket == 0:
		s.Bucket = time.Second
	case s.Bucket < 100*time.Millisecond:
		bad("bucket", "at least 100ms")
	}
	if len(s.Targets) == 0 {
		bad("targets", "at least one target is needed")
	}
	names := map[string]int{}
	loadTargets := 0
	for i := range s.Targets {
		t := &s.Targets[i]
		f := fmt.Sprintf("targets[%d]", i)
		if t.Name == "" {
			bad(f+".name", "a name is needed")
		} else if j, dup := names[t.Name]; dup {
			bad(f+".name", "%q already names targets[%d]", t.Name, j)
		} else {
			names[t.Name] = i
		}
		isGRPC := false
		switch t.Kind {
		case "", "http":
			t.Kind = "http"
			t.Method = strings.ToUpper(t.Method)
			if t.Method == "" {
				t.Method = http.MethodGet
			}
			if !methods[t.Method] {
				bad(f+".method", "%q is not an HTTP method", t.Method)
			}
		case "grpc":
			isGRPC = true
			if !grpcMethodRE.MatchString(t.Method) {
				bad(f+".method", "%q: want a full gRPC method, package.Service/Method", t.Method)
			}
			t.Method = strings.TrimPrefix(t.Method, "/")
		default:
			bad(f+".kind", "%q: want http or grpc", t.Kind)
		}
		switch {
		case t.Weight == 0:
			t.Weight = 1
		case t.Weight < 0:
			bad(f+".weight", "must be positive")
		}
		if !t.Probe {
			loadTargets++
		}
		var err error
		if t.URL == "" {
			bad(f+".url", "a URL is needed")
		} else if t.url, err = parseTmpl(t.URL); err != nil {
			bad(f+".url", "%v", err)
		} else if u, err := url.Parse(strings.SplitN(t.URL, "{{", 2)[0]); isGRPC && (err != nil || u.Scheme != "grpc" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "") {
			bad(f+".url", "%q: want grpc://host:port (plaintext; the method goes in method)", t.URL)
		} else if !isGRPC && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			bad(f+".url", "%q: want an absolute http:// or https:// URL", t.URL)
		} else if strings.Contains(t.URL, "#") {
			bad(f+".url", "%q: a URL fragment is not sent; remove it", t.URL)
		}
		if t.body, err = parseTmpl(t.Body); err != nil {
			bad(f+".body", "%v", err)
		} else if err := tryTmpl(t.body); err != nil {
			bad(f+".body", "%v", err)
		}
		if t.url != nil {
			if err := tryTmpl(t.url); err != nil {
				bad(f+".url", "%v", err)
			}
		}
		t.headers = t.headers[:0]
		for _, k := range sortedKeys(t.Headers) {
			if !validHeaderName(k) {
				bad(f+".headers."+k, "%q is not a header name", k)
				continue
			}
			if isMarkHeader(k) {
				bad(f+".headers."+k, "the run sets the mark headers itself (load-test targets) and never on probes")
				continue
			}
			ht, err := parseTmpl(t.Headers[k])
			if err == nil {
				err = tryTmpl(ht)
			}
			if err != nil {
				bad(f+".headers."+k, "%v", err)
				continue
			}
			t.headers = append(t.headers, headerTmpl{http.CanonicalHeaderKey(k), ht})
		}
	}
	if len(s.Targets) > 0 && loadTargets == 0 {
		bad("targets", "every target is a probe: at least one load-test target is needed")
	}
	if len(s.Stages) == 0 {
		bad("stages", "at least one stage is needed, e.g. {duration: 30s, rate: 100}")
	}
	var total float64 // seconds: a sum of durations could overflow
	for i, st := range s.Stages {
		f := fmt.Sprintf("stages[%d]", i)
		if st.Duration <= 0 {
			bad(f+".duration", "must be positive")
		}
		if st.Rate < 0 || st.Rate > 1e6 || st.Rate != st.Rate {
			bad(f+".rate", "must be in 0..1000000 requests per second")
		}
		if st.From != nil && (*st.From < 0 || *st.From > 1e6 || *st.From != *st.From) {
			bad(f+".from", "must be in 0..1000000 requests per second")
		}
		total += st.Duration.Seconds()
	}
	if total > (7 * 24 * time.Hour).Seconds() {
		bad("stages", "the stages last %.0fh: at most a week", total/3600)
	}
	a := &s.Abort
	if a.ErrorRate < 0 || a.ErrorRate > 1 {
		bad("abort.errorRate", "a fraction in 0..1 (0.05 = 5%%)")
	}
	if a.P99 < 0 {
		bad("abort.p99", "must be >= 0")
	}
	switch {
	case a.Window == 0:
		a.Window = 10 * time.Second
	case a.Window < time.Second:
		bad("abort.window", "at least 1s")
	}
	switch {
	case a.MinRequests == 0:
		a.MinRequests = 20
	case a.MinRequests < 0:
		bad("abort.minRequests", "must be positive")
	}
	return errs
}

var tmplFuncs = template.FuncMap{}

func parseTmpl(s string) (*template.Template, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil // a constant
	}
	return template.New("").Option("missingkey=error").Funcs(tmplFuncs).Parse(s)
}

// tryTmpl executes t once with sample variables: a template naming an
// unknown variable fails at decode, not during the run.
func tryTmpl(t *template.Template) error {
	if t == nil {
		return nil
	}
	_, err := execTmpl(t, "", newVars(0, 0, "run-1", 1, "t", time.Unix(0, 0)))
	return err
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// isMarkHeader: a header the run owns (the default mark carriers and
// baggage); a target may not set them.
func isMarkHeader(k string) bool {
	switch strings.ToLower(k) {
	case "x-shadowlane-run", "x-shadowlane-env", "x-shadowlane-token", "baggage":
		return true
	}
	return false
}
