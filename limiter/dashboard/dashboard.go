package dashboard

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

//go:embed page.html
var page []byte

// View is the JSON document served with ?format=json.
type View struct {
	Time      time.Time               `json:"time"`
	CPU       float64                 `json:"cpu"` // last reading of system protection, 0 when off
	Rules     []RuleView              `json:"rules"`
	System    *limiter.SystemRule     `json:"system,omitempty"`
	Blocking  []AlertView             `json:"blocking"`
	Resources []limiter.ResourceStats `json:"resources"`
	Totals    []limiter.Totals        `json:"totals"`
}

// RuleView is a rule as shown in the JSON view, with defaults resolved
// (Burst, ColdFactor, WarmUpMode, Class) so the page shows what is in force.
type RuleView struct {
	Name     string  `json:"name"`
	Resource string  `json:"resource"`
	Class    string  `json:"class"` // all, production or loadtest
	Env      string  `json:"env,omitempty"`
	QPS      float64 `json:"qps,omitempty"`
	Burst    int     `json:"burst,omitempty"`
	Conc     int     `json:"concurrency,omitempty"`
	// LoadTestShare is the load-test class's share of the rule (rate,
	// burst, concurrency); 1 when the rule applies to both classes without
	// a preference, 0 when no share applies (a rule scoped to one class, a
	// param rule, a breaker-only rule).
	LoadTestShare float64 `json:"loadTestShare"`
	WarmUp        string  `json:"warmUp,omitempty"`     // e.g. "10s"
	WarmUpMode    string  `json:"warmUpMode,omitempty"` // token or linear
	ColdFactor    float64 `json:"coldFactor,omitempty"`
	MaxWait       string  `json:"maxWait,omitempty"` // queueing: the longest a request waits for its slot
	Param         string  `json:"param,omitempty"`   // hot-parameter key
	Breaker       string  `json:"breaker,omitempty"`
	DryRun        bool    `json:"dryRun,omitempty"`
}

func ruleView(r limiter.Rule) RuleView {
	rv := RuleView{Name: r.Name, Resource: r.Resource, Class: r.Class, Env: r.Env, QPS: r.QPS, Burst: r.Burst,
		Conc: r.Concurrency, LoadTestShare: r.LoadTestShare, DryRun: r.DryRun}
	if rv.Class == "" {
		rv.Class = limiter.ClassAll
	}
	if rv.Class != limiter.ClassAll || r.Param != nil || (r.QPS == 0 && r.Concurrency == 0) {
		rv.LoadTestShare = 0 // no share applies
	} else if rv.LoadTestShare == 0 {
		rv.LoadTestShare = 1
	}
	if r.QPS > 0 && r.Burst == 0 {
		rv.Burst = max(1, int(r.QPS/10))
	}
	if r.WarmUp > 0 {
		rv.WarmUp = r.WarmUp.String()
		rv.WarmUpMode = r.WarmUpMode
		if rv.WarmUpMode == "" {
			rv.WarmUpMode = limiter.WarmUpToken
		}
		rv.ColdFactor = r.ColdFactor
		if rv.ColdFactor == 0 {
			rv.ColdFactor = 3
		}
	}
	if r.MaxWait > 0 {
		rv.MaxWait = r.MaxWait.String()
	}
	if r.Param != nil {
		rv.Param = r.Param.Key
	}
	if b := r.Breaker; b != nil {
		rv.Breaker = b.Strategy.String() + " ≥ " + strconv.FormatFloat(b.Threshold, 'g', -1, 64)
		if b.MinRequests > 0 {
			rv.Breaker += ", min " + strconv.Itoa(b.MinRequests)
		}
	}
	return rv
}

// AlertView is a rule blocking now.
type AlertView struct {
	Rule     string    `json:"rule"`
	Resource string    `json:"resource"`
	Reason   string    `json:"reason"`
	Class    string    `json:"class"`
	Since    time.Time `json:"since"`
	Blocked  int64     `json:"blocked"`
}

// Snapshot builds the JSON view of l.
func Snapshot(l *limiter.Limiter) View {
	v := View{Time: time.Now(), CPU: l.CPU(), System: l.System(), Resources: l.Snapshot(), Totals: l.Totals(),
		Rules: []RuleView{}, Blocking: []AlertView{}}
	for _, r := range l.Rules() {
		v.Rules = append(v.Rules, ruleView(r))
	}
	for _, a := range l.Blocking() {
		v.Blocking = append(v.Blocking, AlertView{Rule: a.Rule, Resource: a.Resource, Reason: a.Reason.String(), Class: a.Class, Since: a.At, Blocked: a.Blocked})
	}
	if v.Resources == nil {
		v.Resources = []limiter.ResourceStats{}
	}
	if v.Totals == nil {
		v.Totals = []limiter.Totals{}
	}
	return v
}

// Handler serves the live page, and the JSON view when the query has
// format=json (the page polls it every second). Only GET and HEAD are
// allowed.
func Handler(l *limiter.Limiter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Query().Get("format") == "json" {
			// Encode first: a view that cannot be encoded is a 500 with
			// the reason, never a 200 with an empty body.
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", " ")
			if err := enc.Encode(Snapshot(l)); err != nil {
				http.Error(w, "shadowlane/limiter/dashboard: encoding the view: "+err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(buf.Bytes())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
		w.Write(page)
	})
}
