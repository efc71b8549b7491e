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

// RuleView is a rule as shown in the JSON view.
type RuleView struct {
	Name     string  `json:"name"`
	Resource string  `json:"resource"`
	Class    string  `json:"class,omitempty"`
	Env      string  `json:"env,omitempty"`
	QPS      float64 `json:"qps,omitempty"`
	Burst    int     `json:"burst,omitempty"`
	Conc     int     `json:"concurrency,omitempty"`
	Breaker  string  `json:"breaker,omitempty"`
	DryRun   bool    `json:"dryRun,omitempty"`
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
		rv := RuleView{Name: r.Name, Resource: r.Resource, Class: r.Class, Env: r.Env, QPS: r.QPS, Burst: r.Burst, Conc: r.Concurrency, DryRun: r.DryRun}
		if r.Breaker != nil {
			rv.Breaker = r.Breaker.Strategy.String() + " ≥ " + strconv.FormatFloat(r.Breaker.Threshold, 'g', -1, 64)
		}
		v.Rules = append(v.Rules, rv)
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
