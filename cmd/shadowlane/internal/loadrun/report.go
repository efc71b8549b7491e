package loadrun

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/chartjs"
)

// Report is the outcome of a run, or of several parts merged.
type Report struct {
	Run        string    `json:"run"`
	Scenario   string    `json:"scenario"`
	OK         bool      `json:"ok"` // not aborted, no leak alarm
	Parts      []PartRep `json:"parts"`
	Started    time.Time `json:"started"`
	DurationMs float64   `json:"durationMs"`
	BucketMs   int64     `json:"bucketMs"`

	Asked    float64 `json:"asked"`    // requests the stages asked for (all parts)
	Sent     int64   `json:"sent"`     // requests sent
	Errors   int64   `json:"errors"`   // failed: transport error or status >= 400
	Probes   int64   `json:"probes"`   // production probes among Sent
	AskedRPS float64 `json:"askedRps"` // Asked / duration of the stages
	SentRPS  float64 `json:"sentRps"`  // Sent / duration

	Statuses map[string]int64 `json:"statuses"` // by status code ("0": no answer)
	Targets  []TargetRep      `json:"targets"`
	// Series: per bucket, the asked and sent rates (all targets).
	AskedSeries []float64 `json:"askedSeries"`
	SentSeries  []float64 `json:"sentSeries"`

	Aborts         []AbortRep        `json:"aborts"`
	TokenMints     int               `json:"tokenMints"`
	Services       []ServiceEvidence `json:"services"`
	Leaks          []string          `json:"leaks"`
	ServicesFailed int               `json:"servicesFailed"`
}

// PartRep is one load machine's share.
type PartRep struct {
	Part    int       `json:"part"`
	Parts   int       `json:"parts"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	Sent    int64     `json:"sent"`
	Aborted bool      `json:"aborted"`
}

// AbortRep is one abort.
type AbortRep struct {
	AtMs   float64 `json:"atMs"`
	Part   int     `json:"part"`
	Reason string  `json:"reason"`
}

// TargetRep is one target's totals and its series over time.
type TargetRep struct {
	Name     string           `json:"name"`
	Method   string           `json:"method"`
	URL      string           `json:"url"`
	Probe    bool             `json:"probe"`
	Sent     int64            `json:"sent"`
	Errors   int64            `json:"errors"`
	RPS      float64          `json:"rps"`
	Statuses map[string]int64 `json:"statuses"`
	ErrTop   []ErrCount       `json:"errTop"`
	P50      float64          `json:"p50"` // ms
	P90      float64          `json:"p90"`
	P99      float64          `json:"p99"`
	Max      float64          `json:"max"`
	Mean     float64          `json:"mean"`
	Series   Series           `json:"series"`
}

// ErrCount is one error message and how often it came.
type ErrCount struct {
	Err string `json:"err"`
	N   int64  `json:"n"`
}

// Series holds per-bucket values (index i: [i*bucket, (i+1)*bucket) from
// the report's start).
type Series struct {
	Sent   []int64   `json:"sent"`
	Errors []int64   `json:"errors"`
	P50    []float64 `json:"p50"`
	P90    []float64 `json:"p90"`
	P99    []float64 `json:"p99"`
}

// Aggregator builds a Report from results lines; a run feeds it live and
// `report merge` feeds it every part's file, so a merged report is the
// sum of its parts.
type Aggregator struct {
	bucket  time.Duration
	run     string
	scen    string
	parts   map[int]*partAgg
	cur     *partAgg
	targets map[string]*targetAgg
	order   []string
	aborts  []abortAt
	mints   int
	svc     map[string]ServiceEvidence
}

type partAgg struct {
	PartRep
	stages []Stage
	end    time.Time
}

type abortAt struct {
	t      time.Time
	part   int
	reason string
}

type targetAgg struct {
	info     TargetInfo
	all      vegeta.LatencyMetrics
	sent     int64
	errs     int64
	statuses map[string]int64
	errTop   map[string]int64
	buckets  map[int64]*bucketAgg
}

type bucketAgg struct {
	n, errs int64
	lat     vegeta.LatencyMetrics
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{parts: map[int]*partAgg{}, targets: map[string]*targetAgg{}, svc: map[string]ServiceEvidence{}}
}

// Add takes one line. Lines after a start line belong to its part.
func (a *Aggregator) Add(l *Line) error {
	switch l.Kind {
	case "start":
		if a.run != "" && l.Run != a.run {
			return fmt.Errorf("run %q: the other files are of run %q; merge the parts of one run", l.Run, a.run)
		}
		if a.bucket != 0 && l.Bucket != a.bucket {
			return fmt.Errorf("bucket %s differs from the other parts' %s", l.Bucket, a.bucket)
		}
		for _, p := range a.parts {
			if p.Parts != l.Parts {
				return fmt.Errorf("part %d/%d: the other files are parts of %d", l.Part, l.Parts, p.Parts)
			}
		}
		if _, dup := a.parts[l.Part]; dup {
			return fmt.Errorf("part %d/%d given twice", l.Part, l.Parts)
		}
		if l.Bucket <= 0 {
			return fmt.Errorf("start line without a bucket")
		}
		a.run, a.scen, a.bucket = l.Run, l.Scenario, l.Bucket
		p := &partAgg{PartRep: PartRep{Part: l.Part, Parts: l.Parts, Host: l.Host, Started: time.Unix(0, l.T)}, stages: l.Stages}
		a.parts[l.Part] = p
		a.cur = p
		for _, ti := range l.Targets {
			if _, ok := a.targets[ti.Name]; !ok {
				a.targets[ti.Name] = &targetAgg{info: ti, statuses: map[string]int64{}, errTop: map[string]int64{}, buckets: map[int64]*bucketAgg{}}
				a.order = append(a.order, ti.Name)
			}
		}
		return nil
	}
	if a.cur == nil {
		return fmt.Errorf("%s line before the start line", l.Kind)
	}
	switch l.Kind {
	case "req":
		t := a.targets[l.Target]
		if t == nil {
			return fmt.Errorf("request to target %q, which the start line does not name", l.Target)
		}
		a.cur.Sent++
		t.sent++
		failed := l.Err != "" || l.Code >= 400 || l.Code == 0
		if failed {
			t.errs++
			if l.Err != "" {
				if len(t.errTop) < 50 || t.errTop[l.Err] > 0 {
					t.errTop[l.Err]++
				}
			}
		}
		t.statuses[strconv.Itoa(l.Code)]++
		lat := time.Duration(l.Lat)
		t.all.Add(lat)
		k := l.T / int64(a.bucket)
		b := t.buckets[k]
		if b == nil {
			b = &bucketAgg{}
			t.buckets[k] = b
		}
		b.n++
		if failed {
			b.errs++
		}
		b.lat.Add(lat)
	case "abort":
		a.cur.Aborted = true
		a.aborts = append(a.aborts, abortAt{time.Unix(0, l.T), a.cur.Part, l.Reason})
	case "token":
		a.mints++
	case "evidence":
		if l.Service != nil {
			// Counts are per run and monotonic at the service: the latest
			// read (of any part) is the most complete.
			if old, ok := a.svc[l.Service.URL]; !ok || l.Service.AtUnix >= old.AtUnix {
				a.svc[l.Service.URL] = *l.Service
			}
		}
	case "end":
		a.cur.end = time.Unix(0, l.T)
	default:
		return fmt.Errorf("unknown line kind %q", l.Kind)
	}
	return nil
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Report computes the report of what was added so far.
func (a *Aggregator) Report() *Report {
	r := &Report{Run: a.run, Scenario: a.scen, BucketMs: a.bucket.Milliseconds(), Statuses: map[string]int64{},
		Aborts: []AbortRep{}, Services: []ServiceEvidence{}, Leaks: []string{}, Targets: []TargetRep{}}
	if len(a.parts) == 0 {
		return r
	}
	var start, end time.Time
	var stagesLen time.Duration
	for _, p := range a.parts {
		if start.IsZero() || p.Started.Before(start) {
			start = p.Started
		}
		e := p.end
		if e.IsZero() {
			e = time.Now()
		}
		if e.After(end) {
			end = e
		}
		var d time.Duration
		for _, s := range p.stages {
			d += s.Duration
		}
		stagesLen = max(stagesLen, d)
		r.Parts = append(r.Parts, p.PartRep)
	}
	slices.SortFunc(r.Parts, func(x, y PartRep) int { return x.Part - y.Part })
	r.Started = start
	r.DurationMs = ms(end.Sub(start))
	b0 := start.UnixNano() / int64(a.bucket)
	nb := int((end.UnixNano()/int64(a.bucket))-b0) + 1
	nb = max(nb, 1)
	// Asked: the stages of each part, scaled to its share, per bucket.
	r.AskedSeries = make([]float64, nb)
	for _, p := range a.parts {
		sp := newStagePacer(p.stages, float64(p.Parts))
		off := p.Started.Sub(time.Unix(0, b0*int64(a.bucket)))
		for i := range nb {
			t0 := time.Duration(i)*a.bucket - off
			t1 := t0 + a.bucket
			r.AskedSeries[i] += (sp.Expected(t1) - sp.Expected(t0)) / a.bucket.Seconds()
		}
		r.Asked += sp.Expected(sp.end)
	}
	r.SentSeries = make([]float64, nb)
	for _, name := range a.order {
		t := a.targets[name]
		tr := TargetRep{Name: name, Method: t.info.Method, URL: t.info.URL, Probe: t.info.Probe, Sent: t.sent, Errors: t.errs,
			Statuses: t.statuses, ErrTop: []ErrCount{}}
		for e, n := range t.errTop {
			tr.ErrTop = append(tr.ErrTop, ErrCount{e, n})
		}
		slices.SortFunc(tr.ErrTop, func(x, y ErrCount) int {
			if x.N != y.N {
				return int(y.N - x.N)
			}
			return 0
		})
		if len(tr.ErrTop) > 10 {
			tr.ErrTop = tr.ErrTop[:10]
		}
		if t.sent > 0 {
			tr.P50, tr.P90, tr.P99 = ms(t.all.Quantile(0.5)), ms(t.all.Quantile(0.9)), ms(t.all.Quantile(0.99))
			tr.Max = ms(t.all.Max)
			tr.Mean = ms(t.all.Total / time.Duration(t.sent))
		}
		s := Series{Sent: make([]int64, nb), Errors: make([]int64, nb), P50: make([]float64, nb), P90: make([]float64, nb), P99: make([]float64, nb)}
		for k, b := range t.buckets {
			i := int(k - b0)
			if i < 0 || i >= nb {
				continue
			}
			s.Sent[i], s.Errors[i] = b.n, b.errs
			s.P50[i], s.P90[i], s.P99[i] = ms(b.lat.Quantile(0.5)), ms(b.lat.Quantile(0.9)), ms(b.lat.Quantile(0.99))
			r.SentSeries[i] += float64(b.n) / a.bucket.Seconds()
		}
		tr.Series = s
		r.Sent += t.sent
		r.Errors += t.errs
		if t.info.Probe {
			r.Probes += t.sent
		}
		for c, n := range t.statuses {
			r.Statuses[c] += n
		}
		r.Targets = append(r.Targets, tr)
	}
	if d := end.Sub(start).Seconds(); d > 0 {
		r.SentRPS = float64(r.Sent) / d
		for i := range r.Targets {
			r.Targets[i].RPS = float64(r.Targets[i].Sent) / d
		}
	}
	if stagesLen > 0 {
		r.AskedRPS = r.Asked / stagesLen.Seconds()
	}
	for _, ab := range a.aborts {
		r.Aborts = append(r.Aborts, AbortRep{AtMs: ms(ab.t.Sub(start)), Part: ab.part, Reason: ab.reason})
	}
	r.TokenMints = a.mints
	for _, u := range sortedKeys(a.svc) {
		s := a.svc[u]
		r.Services = append(r.Services, s)
		if s.Err != "" {
			r.ServicesFailed++
		}
		for _, l := range s.Leaks {
			r.Leaks = append(r.Leaks, s.Label+": "+l)
		}
	}
	r.OK = len(r.Aborts) == 0 && len(r.Leaks) == 0
	return r
}

// WriteDir writes dir/report.json and dir/index.html and returns the
// HTML's path.
func (r *Report) WriteDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return "", err
	}
	return chartjs.WriteIndex(dir, r.WriteHTML)
}
