package loadrun

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/shadowlane/shadowlane/cmd/shadowlane/internal/evidence"
	"github.com/shadowlane/shadowlane/internal/tick"
)

// Minter signs a load-test token for run (and env, when not empty) valid
// until exp.
type Minter func(run, env string, exp time.Time) (string, error)

// Headers are the names of the mark carriers the services expect.
type Headers struct {
	Run, Env, Token string
}

// Options of one run (or one part of a run).
type Options struct {
	Scenario *Scenario
	Run      string // run id (required)
	Part     int    // 1-based part of Parts; 0/0 means 1/1
	Parts    int
	Mint     Minter
	Headers  Headers
	// Services are admin base URLs whose per-run evidence is read before
	// and after the run (and polled during it for leak alarms).
	Services     []string
	EvidencePoll time.Duration // default 5s
	Results      io.Writer     // JSON lines; nil: discarded
	Progress     func(Progress)
	// Client, if set, sends the requests (tests); else vegeta's own.
	Client *http.Client
}

// Progress is the state once a second.
type Progress struct {
	Elapsed   time.Duration
	Total     time.Duration // of the stages
	Sent      int64
	Errors    int64
	AskedRate float64 // now, this part
	Rate      float64 // sent in the last second
	P99       time.Duration
	Window    int // requests in the abort window
}

// ErrSetup is wrapped by errors that prevent the run from starting.
var ErrSetup = errors.New("run setup")

// Run runs the scenario and returns its report. ctx cancels the run (it
// then ends as aborted "interrupted").
func Run(ctx context.Context, o Options) (*Report, error) {
	s := o.Scenario
	if o.Parts == 0 {
		o.Part, o.Parts = 1, 1
	}
	if o.Part < 1 || o.Part > o.Parts {
		return nil, fmt.Errorf("%w: part %d/%d", ErrSetup, o.Part, o.Parts)
	}
	if !runIDRE.MatchString(o.Run) {
		return nil, fmt.Errorf("%w: %q is not a run id", ErrSetup, o.Run)
	}
	if o.Mint == nil || o.Headers.Token == "" {
		return nil, fmt.Errorf("%w: no token minter", ErrSetup)
	}
	if o.EvidencePoll <= 0 {
		o.EvidencePoll = 5 * time.Second
	}
	if o.Results == nil {
		o.Results = io.Discard
	}
	lw := newLineWriter(o.Results)
	agg := NewAggregator()
	var aggMu sync.Mutex
	emit := func(l *Line) {
		aggMu.Lock()
		defer aggMu.Unlock()
		lw.write(l)
		_ = agg.Add(l)
	}

	// The token: minted now, refreshed at 2/3 of its life.
	tok := &tokenBox{mint: o.Mint, run: o.Run, env: s.Token.Env, ttl: s.Token.TTL}
	first, err := tok.refresh()
	if err != nil {
		return nil, fmt.Errorf("%w: minting the token: %v", ErrSetup, err)
	}

	// Evidence before.
	before := make([]evidence.Status, len(o.Services))
	beforeErr := make([]error, len(o.Services))
	for i, u := range o.Services {
		before[i], beforeErr[i] = evidence.Fetch(ctx, u, o.Run)
	}

	host, _ := os.Hostname()
	began := time.Now()
	infos := make([]TargetInfo, len(s.Targets))
	for i, t := range s.Targets {
		infos[i] = TargetInfo{Name: t.Name, Method: t.Method, URL: t.URL, Probe: t.Probe, Weight: t.Weight}
	}
	emit(&Line{Kind: "start", V: ResultsVersion, Run: o.Run, Scenario: s.Name, Part: o.Part, Parts: o.Parts, Host: host,
		Bucket: s.Bucket, Stages: s.Stages, Targets: infos, T: began.UnixNano()})
	emit(&Line{Kind: "token", T: began.UnixNano(), Exp: first.Unix()})

	abortCh := make(chan string, 4)
	abort := func(reason string) {
		select {
		case abortCh <- reason:
		default:
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		tok.loop(runCtx, func(exp time.Time) { emit(&Line{Kind: "token", T: time.Now().UnixNano(), Exp: exp.Unix()}) }, abort)
	}()
	if len(o.Services) > 0 && s.Abort.LeakAborts() {
		bg.Add(1)
		go func() {
			defer bg.Done()
			watchLeaks(runCtx, o, before, beforeErr, abort)
		}()
	}

	// The attack.
	opts := []func(*vegeta.Attacker){vegeta.Timeout(s.HTTP.Timeout), vegeta.Redirects(vegeta.NoFollow), vegeta.KeepAlive(true)}
	if s.HTTP.MaxInFlight > 0 {
		opts = append(opts, vegeta.MaxWorkers(uint64(s.HTTP.MaxInFlight)), vegeta.Workers(uint64(min(s.HTTP.MaxInFlight, 10))))
	}
	if s.HTTP.Insecure {
		opts = append(opts, vegeta.TLSConfig(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // the scenario asks for it
	}
	if s.hasGRPC() {
		// gRPC targets: a client whose transport makes the gRPC calls
		// (grpc.go) and hands HTTP ones to base.
		c := &http.Client{}
		var base http.RoundTripper
		if o.Client != nil {
			*c = *o.Client
			base = c.Transport
		}
		if base == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 10000
			if s.HTTP.Insecure {
				tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the scenario asks for it
			}
			base = tr
		}
		gt := newGRPCTransport(base)
		defer gt.close()
		c.Transport = gt
		c.Timeout = s.HTTP.Timeout
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		opts = append(opts, vegeta.Client(c))
	} else if o.Client != nil {
		opts = append(opts, vegeta.Client(o.Client))
	}
	atk := vegeta.NewAttacker(opts...)
	pacer := newStagePacer(s.Stages, float64(o.Parts))
	tg := newTargeter(s, o, tok)
	results := atk.Attack(tg.target, pacer, pacer.end, "shadowlane-"+o.Run)

	win := newWindow(s.Abort.Window)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var sent, errs, lastSent int64
	aborted := false
	stopWith := func(reason string) {
		if aborted {
			return
		}
		aborted = true
		emit(&Line{Kind: "abort", T: time.Now().UnixNano(), Reason: reason})
		atk.Stop()
	}
	done := ctx.Done()
loop:
	for {
		select {
		case res, ok := <-results:
			if !ok {
				break loop
			}
			l := tg.line(res)
			sent++
			failed := l.Err != "" || l.Code >= 400 || l.Code == 0
			if failed {
				errs++
			}
			if !l.Probe {
				win.add(time.Unix(0, l.T+l.Lat), time.Duration(l.Lat), failed)
			}
			emit(l)
		case reason := <-abortCh:
			stopWith(reason)
		case <-done:
			done = nil
			stopWith("interrupted")
		case now := <-tick.C:
			n, e, p99 := win.stats(now)
			if !aborted && n >= s.Abort.MinRequests {
				if s.Abort.ErrorRate > 0 && float64(e)/float64(n) > s.Abort.ErrorRate {
					stopWith(fmt.Sprintf("error rate %.1f%% over the last %s (%d of %d load-test requests failed) > %.1f%%",
						100*float64(e)/float64(n), s.Abort.Window, e, n, 100*s.Abort.ErrorRate))
				} else if s.Abort.P99 > 0 && p99 > s.Abort.P99 {
					stopWith(fmt.Sprintf("p99 %s over the last %s (%d load-test requests) > %s", p99.Round(time.Microsecond), s.Abort.Window, n, s.Abort.P99))
				}
			}
			if o.Progress != nil {
				el := now.Sub(began)
				o.Progress(Progress{Elapsed: el, Total: pacer.end, Sent: sent, Errors: errs, AskedRate: pacer.Rate(el),
					Rate: float64(sent - lastSent), P99: p99, Window: n})
			}
			lastSent = sent
		}
	}
	finished := time.Now()
	cancel()
	bg.Wait()
	// A late abort (token loop, leak watch) after the last result.
	select {
	case reason := <-abortCh:
		if !aborted {
			emit(&Line{Kind: "abort", T: time.Now().UnixNano(), Reason: reason})
			aborted = true
		}
	default:
	}

	// Evidence after.
	ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer ecancel()
	for i, u := range o.Services {
		ev := ServiceEvidence{URL: u}
		after, err := evidence.Fetch(ectx, u, o.Run)
		ev.AtUnix = time.Now().UnixNano()
		switch {
		case err != nil:
			ev.Err = err.Error()
		case beforeErr[i] != nil:
			ev.Err = "before the run: " + beforeErr[i].Error()
			ev.Diff = after // counts since the process saw the run first
		default:
			ev.Diff = evidence.Diff(before[i], after)
		}
		if err == nil {
			ev.Label = evidence.Label(ev.Diff)
			ev.Lines = evidence.Lines(ev.Diff)
			ev.Leaks = evidence.Leaks(ev.Diff)
		} else {
			ev.Label = u
		}
		emit(&Line{Kind: "evidence", T: ev.AtUnix, Service: &ev})
	}
	emit(&Line{Kind: "end", T: finished.UnixNano(), Sent: uint64(sent), Aborted: aborted})
	aggMu.Lock()
	defer aggMu.Unlock()
	if err := lw.flush(); err != nil {
		return agg.Report(), fmt.Errorf("writing the results: %w", err)
	}
	return agg.Report(), nil
}

// tokenBox holds the current token; loop re-mints it at 2/3 of its life.
type tokenBox struct {
	mint     Minter
	run, env string
	ttl      time.Duration
	cur      atomic.Pointer[string]
	exp      atomic.Int64 // Unix ns
}

func (t *tokenBox) refresh() (time.Time, error) {
	exp := time.Now().Add(t.ttl).Truncate(time.Second)
	tok, err := t.mint(t.run, t.env, exp)
	if err != nil {
		return time.Time{}, err
	}
	t.cur.Store(&tok)
	t.exp.Store(exp.UnixNano())
	return exp, nil
}

func (t *tokenBox) get() string { return *t.cur.Load() }

func (t *tokenBox) loop(ctx context.Context, minted func(time.Time), abort func(string)) {
	for {
		exp := time.Unix(0, t.exp.Load())
		at := exp.Add(-t.ttl / 3)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		for {
			e, err := t.refresh()
			if err == nil {
				minted(e)
				break
			}
			if time.Now().After(exp) {
				abort("the token expired and could not be re-minted: " + err.Error())
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// watchLeaks polls every service during the run and aborts on a leak alarm.
func watchLeaks(ctx context.Context, o Options, before []evidence.Status, beforeErr []error, abort func(string)) {
	tick.Every(ctx, o.EvidencePoll, func() bool {
		for i, u := range o.Services {
			if beforeErr[i] != nil {
				continue
			}
			after, err := evidence.Fetch(ctx, u, o.Run)
			if err != nil {
				continue
			}
			if leaks := evidence.Leaks(evidence.Diff(before[i], after)); len(leaks) > 0 {
				abort(fmt.Sprintf("leak alarm from %s: %s", evidence.Label(after), strings.Join(leaks, "; ")))
				return false
			}
		}
		return true
	})
}

// targeter builds each request: the target by the seeded mix, the
// templates with the request's Vars, the mark on load-test targets.
type targeter struct {
	s         *Scenario
	o         Options
	tok       *tokenBox
	n         atomic.Uint64
	cum       []int // cumulative weights
	total     int
	markNames []string
}

func newTargeter(s *Scenario, o Options, tok *tokenBox) *targeter {
	tg := &targeter{s: s, o: o, tok: tok}
	for _, t := range s.Targets {
		tg.total += t.Weight
		tg.cum = append(tg.cum, tg.total)
	}
	for _, h := range []string{o.Headers.Run, o.Headers.Env, o.Headers.Token, "Baggage"} {
		if h != "" {
			tg.markNames = append(tg.markNames, http.CanonicalHeaderKey(h))
		}
	}
	return tg
}

// fragment carries the target index and sequence number from the
// targeter to the result: vegeta copies the target URL into the result,
// and an HTTP client never sends a URL's fragment.
const fragment = "#shadowlane="

// refusedHeader is the header a shadowlane entry sets on a refusal
// (middleware.WriteRefusal), with the reason.
const refusedHeader = "X-Shadowlane-Refused"

func (tg *targeter) target(vt *vegeta.Target) error {
	local := tg.n.Add(1) - 1
	seq := local*uint64(tg.o.Parts) + uint64(tg.o.Part-1)
	rng := rand.New(rand.NewPCG(tg.s.Seed, seq^0x9e3779b97f4a7c15))
	pick := rng.IntN(tg.total)
	i, _ := slices.BinarySearch(tg.cum, pick+1)
	t := &tg.s.Targets[i]
	v := newVars(tg.s.Seed, seq, tg.o.Run, tg.o.Part, t.Name, time.Now())
	u, err := execTmpl(t.url, t.URL, v)
	if err != nil {
		return fmt.Errorf("target %s: url: %w", t.Name, err)
	}
	body, err := execTmpl(t.body, t.Body, v)
	if err != nil {
		return fmt.Errorf("target %s: body: %w", t.Name, err)
	}
	h := make(http.Header, len(t.headers)+3)
	for _, ht := range t.headers {
		val, err := execTmpl(ht.tmpl, t.Headers[ht.name], v)
		if err != nil {
			return fmt.Errorf("target %s: header %s: %w", t.Name, ht.name, err)
		}
		h.Set(ht.name, val)
	}
	for _, k := range tg.markNames {
		h.Del(k)
	}
	if !t.Probe {
		h.Set(tg.o.Headers.Run, tg.o.Run)
		if tg.s.Token.Env != "" && tg.o.Headers.Env != "" {
			h.Set(tg.o.Headers.Env, tg.s.Token.Env)
		}
		h.Set(tg.o.Headers.Token, tg.tok.get())
	}
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u = u[:i]
	}
	vt.Method = t.Method
	if t.Kind == "grpc" {
		vt.Method = http.MethodPost
		u = strings.TrimSuffix(u, "/") + "/" + t.Method
	}
	vt.URL = u + fragment + strconv.Itoa(i) + "." + strconv.FormatUint(seq, 10)
	vt.Body = []byte(body)
	vt.Header = h
	return nil
}

func (tg *targeter) line(res *vegeta.Result) *Line {
	l := &Line{Kind: "req", T: res.Timestamp.UnixNano(), Code: int(res.Code), Lat: int64(res.Latency), Err: res.Error, In: res.BytesIn, Out: res.BytesOut}
	if l.Code > 0 && l.Err == strconv.Itoa(l.Code)+" "+http.StatusText(l.Code) {
		l.Err = "" // vegeta names a status >= 400 as an error: the code says it
	}
	if reason := res.Headers.Get(refusedHeader); reason != "" {
		// An entry refused it (bad or expired token, kill switch): say why.
		l.Err = fmt.Sprintf("%d refused by shadowlane: %s", l.Code, reason)
	}
	if i := strings.LastIndex(res.URL, fragment); i >= 0 {
		idx, seq, _ := strings.Cut(res.URL[i+len(fragment):], ".")
		if n, err := strconv.Atoi(idx); err == nil && n >= 0 && n < len(tg.s.Targets) {
			l.Target = tg.s.Targets[n].Name
			l.Probe = tg.s.Targets[n].Probe
		}
		l.Seq, _ = strconv.ParseUint(seq, 10, 64)
	}
	if l.Target == "" {
		l.Target = tg.s.Targets[0].Name
	}
	if l.Err != "" {
		l.Err = cleanErr(l.Err)
	}
	return l
}

// cleanErr drops the per-request URL (with its fragment) from a transport
// error so that equal errors count together.
func cleanErr(e string) string {
	if i := strings.Index(e, fragment); i >= 0 {
		j := i + len(fragment)
		for j < len(e) && (e[j] == '.' || (e[j] >= '0' && e[j] <= '9')) {
			j++
		}
		e = e[:i] + e[j:]
	}
	return e
}

// window keeps the finished load-test requests of the last d for the
// abort conditions.
type window struct {
	d    time.Duration
	ends []time.Time
	lat  []time.Duration
	fail []bool
}

func newWindow(d time.Duration) *window { return &window{d: d} }

func (w *window) add(end time.Time, lat time.Duration, failed bool) {
	w.ends = append(w.ends, end)
	w.lat = append(w.lat, lat)
	w.fail = append(w.fail, failed)
}

// stats drops what is older than d before now and returns the count, the
// failures and the p99 latency of the rest.
func (w *window) stats(now time.Time) (n, errs int, p99 time.Duration) {
	cut := 0
	for cut < len(w.ends) && now.Sub(w.ends[cut]) > w.d {
		cut++
	}
	if cut > 0 {
		w.ends = slices.Delete(w.ends, 0, cut)
		w.lat = slices.Delete(w.lat, 0, cut)
		w.fail = slices.Delete(w.fail, 0, cut)
	}
	n = len(w.lat)
	for _, f := range w.fail {
		if f {
			errs++
		}
	}
	if n == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(w.lat)
	slices.Sort(s)
	return n, errs, s[min(n-1, (n*99+99)/100-1)]
}
