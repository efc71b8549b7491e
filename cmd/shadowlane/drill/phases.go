package drill

// The drill's traffic phases, in the order Run runs them: the timed phase
// (with its fault schedule), the fixed scenarios, the kill switch at the
// edge and at an internal service, and strict routing for one service.
// What each request got is kept in the drillRun for invariants.go.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/propagation"
)

// request is one request a scenario sends.
type request struct {
	id      string
	query   string
	headers map[string]string
}

// expectation says what each hop must have seen for a scenario's requests.
type expectation struct {
	name     string
	build    func(i int) request
	want     propagation.Mark // at gateway, orders and inventory
	status   int
	reaches  []string // hops that must see the request (default all three)
	payClass string   // "production", "loadtest-blocked", "mocked", or "" (no payment)
	forged   bool
	strict   bool // sent while the ledger is strict
}

var hops = []string{"gateway", "orders", "relay", "inventory", "ledger"}

// drillRun is one drill in progress: the topology and stores, the report
// being filled, and what every request sent so far got.
type drillRun struct {
	o         Options
	t         *topology
	st        *stores
	rep       *Report
	client    *http.Client
	col       *collector
	run, tok  string
	scenarios []expectation
	statuses  map[string]map[int]int   // scenario -> HTTP status -> requests
	codes     map[string]int           // request id -> HTTP status (0: no answer)
	slowest   map[string]time.Duration // scenario -> slowest round trip
	odd       map[string]*examples     // scenario -> answers other than its status (why they failed)
	timed     timedResult
	plan      faultPlan
	picks0    []envtag.Count // envtag's pick counters before the fixed scenarios
	kept      int            // 1 when a reload with an invalid routing section kept the strict ledger
	badErr    error          // that reload's error
}

// hdr builds a header map from key, value pairs.
func hdr(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// simple builds scenario name's requests: ids name-0, name-1, ..., all
// with the same query and headers.
func simple(name, query string, h map[string]string) func(int) request {
	return func(i int) request {
		return request{id: fmt.Sprintf("%s-%d", name, i), query: query, headers: h}
	}
}

// newDrillRun signs the run's tokens, lists the fixed scenarios and probes
// the edge tag sources.
func newDrillRun(ctx context.Context, o Options, t *topology, st *stores, started time.Time) *drillRun {
	run := "drill-" + started.UTC().Format("20060102-150405")
	kr := t.gw.Keyring()
	tok, _ := kr.Sign(run, "", time.Now().Add(time.Hour))
	d := &drillRun{o: o, t: t, st: st, run: run, tok: tok,
		client:   &http.Client{Timeout: o.Timeout + clientGrace(o.Timeout)},
		rep:      &Report{Run: run, Started: started, Hops: hops, Meta: map[string]string{"gateway": t.gwURL}},
		statuses: map[string]map[int]int{}, codes: map[string]int{}, slowest: map[string]time.Duration{}, odd: map[string]*examples{}}
	d.scenarios = d.fixedScenarios()
	// The edge tag source (routing.tagSource at the gateway): a request
	// whose cookie or query parameter names proj-a is routed like one with
	// the mark header. Each source runs when the edge applies it.
	d.rep.Routing.EdgeTagSource = map[string]bool{
		"cookie": probeTag(ctx, d.client, t.gwURL+"/mark", "Cookie", "shadowlane-env="+projEnv),
		"query":  probeTag(ctx, d.client, t.gwURL+"/mark?env="+projEnv, "", ""),
	}
	if d.rep.Routing.EdgeTagSource["cookie"] {
		d.scenarios = append(d.scenarios, expectation{name: "env-from-cookie", build: simple("env-from-cookie", "", hdr("Cookie", "shadowlane-env="+projEnv)), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production"})
	}
	if d.rep.Routing.EdgeTagSource["query"] {
		d.scenarios = append(d.scenarios, expectation{name: "env-from-query", build: simple("env-from-query", "env="+projEnv, nil), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production"})
	}
	d.col = newCollector(time.Now())
	return d
}

// fixedScenarios are the scenarios every drill sends: production, signed
// load-test traffic by every carrier, env-tagged traffic, and every forged
// or unverifiable load-test indicator.
func (d *drillRun) fixedScenarios() []expectation {
	run, tok := d.run, d.tok
	kr := d.t.gw.Keyring()
	exp := time.Now().Add(time.Hour)
	envTok, _ := kr.Sign(run, "proj-a", exp)
	expiredTok, _ := kr.Sign(run, "", time.Now().Add(-time.Minute))
	otherTok, _ := kr.Sign(run+"-other", "", exp)
	badSig := tok[:len(tok)-4] + "AAAA"
	if strings.HasSuffix(tok, "AAAA") {
		badSig = tok[:len(tok)-4] + "BBBB"
	}
	lt := propagation.Mark{Run: run}
	return []expectation{
		{name: "production", build: simple("production", "", nil), status: 200, payClass: "production"},
		{name: "loadtest-signed", build: simple("loadtest-signed", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), want: lt, status: 200, payClass: "loadtest-blocked"},
		{name: "loadtest-mocked-provider", build: simple("loadtest-mocked-provider", "pay=mock", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), want: lt, status: 200, payClass: "mocked"},
		{name: "loadtest-baggage-only", build: simple("loadtest-baggage-only", "", hdr("Baggage", "shadowlane.run="+run+",shadowlane.token="+tok)), want: lt, status: 200, payClass: "loadtest-blocked"},
		{name: "loadtest-token-only", build: simple("loadtest-token-only", "", hdr("X-Shadowlane-Token", tok)), want: lt, status: 200, payClass: "loadtest-blocked"},
		{name: "loadtest-env-bound-token", build: simple("loadtest-env-bound-token", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Env", "proj-a", "X-Shadowlane-Token", envTok)), want: propagation.Mark{Run: run, Env: "proj-a"}, status: 200, payClass: "loadtest-blocked"},
		{name: "env-tagged-production", build: simple("env-tagged-production", "", hdr("X-Shadowlane-Env", "proj-a")), want: propagation.Mark{Env: "proj-a"}, status: 200, payClass: "production"},
		{name: "env-no-lane-fallback", build: simple("env-no-lane-fallback", "", hdr("X-Shadowlane-Env", "proj-z")), want: propagation.Mark{Env: "proj-z"}, status: 200, payClass: "production"},
		// Every forged or unverifiable load-test indicator is refused at the
		// edge (trust.onUntrusted defaults to reject): never production.
		{name: "forged-no-token", build: simple("forged-no-token", "", hdr("X-Shadowlane-Run", run)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-bad-signature", build: simple("forged-bad-signature", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", badSig)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-other-run", build: simple("forged-other-run", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", otherTok)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-expired", build: simple("forged-expired", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", expiredTok)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-env-not-in-token", build: simple("forged-env-not-in-token", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Env", "proj-b", "X-Shadowlane-Token", envTok)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-baggage-no-token", build: simple("forged-baggage-no-token", "", hdr("Baggage", "shadowlane.run="+run)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-expired-token-only", build: simple("forged-expired-token-only", "", hdr("X-Shadowlane-Token", expiredTok)), status: 403, reaches: []string{}, forged: true},
		{name: "forged-conflicting-baggage", build: simple("forged-conflicting-baggage", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok, "Baggage", "a=1, shadowlane.run="+run+"-other")), status: 403, reaches: []string{}, forged: true},
		{name: "malformed-run-id", build: simple("malformed-run-id", "", hdr("X-Shadowlane-Run", "r1;DROP TABLE orders", "X-Shadowlane-Token", tok)), status: 403, reaches: []string{}, forged: true},
	}
}

// timedPhase sends the timed traffic (Options.Duration at Options.Rate)
// and, with Options.Faults, runs the fault schedule meanwhile.
func (d *drillRun) timedPhase(ctx context.Context) {
	o := d.o
	if o.Duration <= 0 || o.Rate <= 0 {
		return
	}
	var fdone chan []Fault
	fctx, fcancel := context.WithCancel(ctx)
	if o.Faults {
		d.plan = planFaults(d.st.proxies, o.Duration)
		d.plan.print(o.Notes)
		fdone = make(chan []Fault, 1)
		tstart := time.Now()
		go func() { fdone <- d.plan.run(fctx, tstart, d.col.start) }()
	}
	timed := runTimed(ctx, o, d.client, d.t.gwURL, d.run, d.tok, d.col)
	d.timed = timed
	fcancel()
	d.rep.Meta["timed"] = fmt.Sprintf("%d requests in %s (%.0f/s asked %d/s); in-flight cap %d reached %.0f%% of the time (adaptive: from %d, highest %d)", sumMap(timed.sent), timed.elapsed.Round(time.Millisecond),
		float64(sumMap(timed.sent))/timed.elapsed.Seconds(), o.Rate, timed.inflight, 100*timed.capped.Seconds()/timed.elapsed.Seconds(), timed.least, timed.highest)
	d.rep.Meta["routing health"] = routingHealth()
	if fdone != nil {
		d.rep.Faults = <-fdone
		// Let the clients' pools and reconnects settle before the
		// fixed scenarios.
		time.Sleep(time.Second)
	}
}

// send sends a scenario's requests, Options.Concurrency at a time, and
// records what each got.
func (d *drillRun) send(ctx context.Context, sc expectation) {
	st := map[int]int{}
	var mu sync.Mutex
	concurrently(d.o.Requests, d.o.Concurrency, func(i int) {
		r := sc.build(i)
		t0 := time.Now()
		rp := post(ctx, d.client, d.t.gwURL, r)
		code := rp.code
		dur := time.Since(t0)
		d.col.add(classOf(sc), t0, dur, code)
		mu.Lock()
		st[code]++
		d.codes[r.id] = code
		if code != sc.status {
			if d.odd[sc.name] == nil {
				d.odd[sc.name] = &examples{}
			}
			d.odd[sc.name].add(timedReq{r.id, rp})
		}
		if dur > d.slowest[sc.name] {
			d.slowest[sc.name] = dur
		}
		mu.Unlock()
	})
	d.statuses[sc.name] = st
	d.rep.Scenarios = append(d.rep.Scenarios, Scenario{Name: sc.name, Sent: d.o.Requests, Statuses: stringKeys(st)})
}

// concurrently calls f(0), ..., f(n-1), at most limit at a time, and
// returns when every call has.
func concurrently(n, limit int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, limit)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// fixedPhases sends the fixed scenarios, then the kill switch and strict
// routing phases.
func (d *drillRun) fixedPhases(ctx context.Context) error {
	d.picks0 = envtag.Snapshot()
	for _, sc := range d.scenarios {
		d.send(ctx, sc)
	}
	if err := d.killSwitchPhase(ctx); err != nil {
		return err
	}
	return d.strictPhase(ctx)
}

// killSwitchPhase flips the kill switch at the edge (through the admin
// endpoint) and then at an internal service (API).
func (d *drillRun) killSwitchPhase(ctx context.Context) error {
	t, run, tok := d.t, d.run, d.tok
	if err := t.admin(ctx, false, "drill kill switch"); err != nil {
		return err
	}
	killEdge := expectation{name: "killswitch-edge-loadtest", build: simple("killswitch-edge-loadtest", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), status: 503, reaches: []string{}}
	killProd := expectation{name: "killswitch-edge-production", build: simple("killswitch-edge-production", "", nil), status: 200, payClass: "production"}
	d.send(ctx, killEdge)
	d.send(ctx, killProd)
	if err := t.admin(ctx, true, ""); err != nil {
		return err
	}
	// Kill switch at an internal service (API): the refusal travels back as 503.
	t.inventory.SetLoadTest(false, "inventory maintenance")
	killInt := expectation{name: "killswitch-internal-loadtest", build: simple("killswitch-internal-loadtest", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), want: propagation.Mark{Run: run}, status: 503, reaches: []string{"gateway", "orders", "relay"}}
	d.send(ctx, killInt)
	t.inventory.SetLoadTest(true, "")
	d.scenarios = append(d.scenarios, killEdge, killProd, killInt)
	return nil
}

// strictPhase makes the ledger strict for one service: inventory's routing
// config makes the ledger strict (a config reload). A tag without a ledger
// lane then fails at once instead of falling back; proj-a still has its
// lane. A reload with an invalid routing section is refused and keeps it.
func (d *drillRun) strictPhase(ctx context.Context) error {
	t := d.t
	strictCfg := t.invCfg
	strictCfg.Routing.StrictServices = []string{"ledger"}
	strictErr := t.inventory.Apply(strictCfg)
	badCfg := strictCfg
	badCfg.Routing.Fallback = map[string][]string{"proj-z": {"proj-z"}}
	d.badErr = t.inventory.Apply(badCfg)
	if strictErr == nil && d.badErr != nil && t.inventory.RoutingPolicy().Strict("ledger") {
		d.kept = 1
	}
	strictMiss := expectation{name: "strict-ledger-no-lane", build: simple("strict-ledger-no-lane", "", hdr("X-Shadowlane-Env", "proj-z")), want: propagation.Mark{Env: "proj-z"}, status: 503,
		reaches: []string{"gateway", "orders", "relay", "inventory"}, strict: true}
	strictLane := expectation{name: "strict-ledger-lane", build: simple("strict-ledger-lane", "", hdr("X-Shadowlane-Env", projEnv)), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production", strict: true}
	d.send(ctx, strictMiss)
	d.send(ctx, strictLane)
	if err := t.inventory.Apply(t.invCfg); err != nil {
		return fmt.Errorf("drill: restoring inventory's routing: %w", err)
	}
	d.scenarios = append(d.scenarios, strictMiss, strictLane)
	return nil
}

// probeTag asks the gateway which environment tag it admitted for a
// request carrying only the given header (or query): whether the edge tag
// source is applied.
func probeTag(ctx context.Context, c *http.Client, u, header, value string) bool {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && string(b) == projEnv
}

// maxBody is how much of a failed request's body the drill keeps.
const maxBody = 512

// reply is what the drill's client got for one request.
type reply struct {
	code int    // HTTP status; 0: no answer
	hop  string // the hop that produced a failure (shop.HopHeader), if any
	body string // the first maxBody bytes of the body of an answer other than 200
	err  error  // why there was no answer (code 0)
}

// String describes a failed reply for an invariant's detail.
func (r reply) String() string {
	if r.code == 0 {
		return fmt.Sprintf("no answer: %v", r.err)
	}
	hop := r.hop
	if hop == "" {
		hop = "?"
	}
	return fmt.Sprintf("%d from %s: %s", r.code, hop, strings.TrimSpace(r.body))
}

func post(ctx context.Context, c *http.Client, base string, r request) reply {
	u := base + "/orders/" + r.id
	if r.query != "" {
		u += "?" + r.query
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", u, nil)
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	rp := reply{code: resp.StatusCode, hop: resp.Header.Get(shop.HopHeader)}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		rp.body = string(b)
	}
	io.Copy(io.Discard, resp.Body)
	return rp
}

// routingHealth sums up the passive health of the routing clients (to
// inventory, to the ledger) after the timed phase: connection failures,
// ejections, readmissions and retries.
func routingHealth() string {
	var parts []string
	for _, svc := range []string{"inventory", "ledger"} {
		h := envtag.Health(svc)
		parts = append(parts, fmt.Sprintf("%s: %d connection failures, %d ejections, %d readmissions, %d retries", svc, h.ConnFailures, h.Ejections, h.Readmissions, h.Retries))
	}
	return strings.Join(parts, "; ")
}
