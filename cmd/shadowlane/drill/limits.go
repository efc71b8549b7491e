package drill

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/limiter"
)

// The limits phases run last, once every other invariant has been read,
// so their traffic (and the rules they install at the gateway) cannot
// disturb the other scenarios' counts.

// Resources the limits phases put rules on, at the gateway.
const (
	routeResource  = "POST /orders/:id"   // slgin.Limit at the gateway's entry
	ordersResource = "/shop.Orders/Place" // the gateway's gRPC client (exit)
)

// Budgets of the limits phase.
const (
	ltQPS, ltBurst     = 20, 5     // load-test traffic's own budget on the order route
	prodQPS, prodBurst = 2000, 500 // production's budget: far above what the phase sends
	breakerMinRequests = 5
	breakerWhileOpen   = 5 // calls sent while the breaker is open
)

// breakerTiming is the breaker rule's window and open interval, relative
// to the median round trip the drill observed (p50): the breaker phase
// sends its calls one after the other, the breakerMinRequests failing
// calls must fall within the window and the breakerWhileOpen refusals
// within the open interval, so each gets twice the median (at least 2s
// and 1s). A refusal while open is fast when it took less than twice the
// median (at least 500ms): it waits for no downstream.
type breakerTiming struct{ window, openFor, fast time.Duration }

func newBreakerTiming(p50 time.Duration) breakerTiming {
	per := 2 * p50
	return breakerTiming{
		window:  max(2*time.Second, breakerMinRequests*per),
		openFor: max(time.Second, (breakerWhileOpen+1)*per),
		fast:    max(500*time.Millisecond, per),
	}
}

// medianRoundTrip is the slowest class's median round trip in rep.
func medianRoundTrip(rep *Report) time.Duration {
	var p50 time.Duration
	for _, l := range rep.Latency {
		p50 = max(p50, time.Duration(l.P50*float64(time.Millisecond)))
	}
	return p50
}

// flakySwitch makes a downstream (the relay in front of inventory) fail
// with 503 while it is on, counting the requests it failed.
type flakySwitch struct {
	on     atomic.Bool
	failed atomic.Int64
}

func (f *flakySwitch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.on.Load() {
			f.failed.Add(1)
			http.Error(w, "inventory down (drill)", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// drillLimits is the gateway's "limits:" section during the phases: the
// budgets, and with bt the breaker on the exit to the order service. The
// breaker is installed for the breaker phase only: on a slow machine the
// budget phase's timeouts would open it, and production within its budget
// would be refused for a reason that phase does not test.
func drillLimits(bt *breakerTiming) shadowlane.LimitsConfig {
	rules := []shadowlane.LimitRuleConfig{
		{Name: "orders-loadtest-budget", Resource: routeResource, Class: limiter.ClassLoadTest, QPS: ltQPS, Burst: ltBurst},
		{Name: "orders-production-budget", Resource: routeResource, Class: limiter.ClassProduction, QPS: prodQPS, Burst: prodBurst},
	}
	if bt != nil {
		rules = append(rules, shadowlane.LimitRuleConfig{Name: "orders-breaker", Resource: ordersResource, Breaker: &shadowlane.BreakerConfig{
			Strategy: "error_count", Threshold: breakerMinRequests, MinRequests: breakerMinRequests, Window: bt.window, OpenFor: bt.openFor, Probes: 1}})
	}
	return shadowlane.LimitsConfig{Rules: rules}
}

// answer is one response of a limits phase.
type answer struct {
	code       int
	retryAfter bool
	took       time.Duration
}

func postAnswer(ctx context.Context, c *http.Client, base string, r request) answer {
	u := base + "/orders/" + r.id
	req, _ := http.NewRequestWithContext(ctx, "POST", u, nil)
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return answer{took: time.Since(t0)}
	}
	resp.Body.Close()
	return answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After") != "", took: time.Since(t0)}
}

// limitTotals returns the gateway limiter's lifetime counters of resource
// for class.
func limitTotals(l *limiter.Limiter, resource, class string) limiter.Totals {
	for _, t := range l.Totals() {
		if t.Resource == resource && t.Class == class {
			return t
		}
	}
	return limiter.Totals{}
}

// limitsPhases installs drillLimits at the gateway (a config reload) and
// runs the budget and breaker phases, adding their invariants.
func limitsPhases(ctx context.Context, t *topology, rep *Report, c *http.Client, o Options, run, tok string, add func(string, int, int, string)) error {
	cfg := t.gw.Config()
	cfg.Limits = drillLimits(nil)
	if err := t.gw.Apply(cfg); err != nil {
		return fmt.Errorf("drill: installing the limits rules: %w", err)
	}
	defer func() {
		cfg.Limits = shadowlane.LimitsConfig{Rules: []shadowlane.LimitRuleConfig{}}
		t.gw.Apply(cfg)
	}()
	l := t.gw.Limiter()

	// A reload with an invalid rule is refused and keeps the rules in force.
	bad := cfg
	bad.Limits = drillLimits(nil)
	bad.Limits.Rules[0].QPS = -1
	badErr := t.gw.Apply(bad)
	kept := 0
	if rs := l.Rules(); badErr != nil && len(rs) == len(cfg.Limits.Rules) && rs[0].QPS == ltQPS {
		kept = 1
	}
	add("limits: a reload with an invalid rule is refused and keeps the rules in force", 1, kept, fmt.Sprint(badErr))

	budgetPhase(ctx, t, rep, c, o, run, tok, l, add)
	bt := newBreakerTiming(medianRoundTrip(rep))
	cfg.Limits = drillLimits(&bt)
	if err := t.gw.Apply(cfg); err != nil {
		return fmt.Errorf("drill: installing the breaker rule: %w", err)
	}
	breakerPhase(ctx, t, rep, c, l, bt, add)
	return nil
}

// budgetPhase sends production traffic within its budget and load-test
// traffic far above its own, at once, through the gateway.
func budgetPhase(ctx context.Context, t *topology, rep *Report, c *http.Client, o Options, run, tok string, l *limiter.Limiter, add func(string, int, int, string)) {
	const prodN, ltN = 40, 80
	lt0 := limitTotals(l, routeResource, limiter.ClassLoadTest)
	prod0 := limitTotals(l, routeResource, limiter.ClassProduction)
	reqs := make([]request, 0, prodN+ltN)
	for i := range max(prodN, ltN) {
		if i < prodN {
			reqs = append(reqs, request{id: fmt.Sprintf("limits-production-%d", i)})
		}
		if i < ltN {
			reqs = append(reqs, request{id: fmt.Sprintf("limits-loadtest-%d", i), headers: map[string]string{"X-Shadowlane-Run": run, "X-Shadowlane-Token": tok}})
		}
	}
	answers := make([]answer, len(reqs))
	t0 := time.Now()
	concurrently(len(reqs), o.Concurrency, func(i int) { answers[i] = postAnswer(ctx, c, t.gwURL, reqs[i]) })
	elapsed := time.Since(t0)

	// A request without an answer in time (0, 504) or whose call broke
	// (502) has an unknown outcome: counted apart, never a violation.
	prodSt, ltSt := map[int]int{}, map[int]int{}
	ltPassed, lt429, ltUnknown, ltOther, prodBlocked, prodUnknown := 0, 0, 0, 0, 0, 0
	for i, a := range answers {
		if reqs[i].headers == nil {
			prodSt[a.code]++
			switch {
			case a.code == http.StatusTooManyRequests || a.code == http.StatusServiceUnavailable:
				prodBlocked++
			case unknownCode(a.code):
				prodUnknown++
			}
			continue
		}
		ltSt[a.code]++
		switch {
		case a.code == http.StatusOK:
			ltPassed++
		case a.code == http.StatusTooManyRequests && a.retryAfter:
			lt429++
		case unknownCode(a.code):
			ltUnknown++
		default:
			ltOther++
		}
	}
	rep.Scenarios = append(rep.Scenarios,
		Scenario{Name: "limits-production-within-budget", Sent: prodN, Statuses: stringKeys(prodSt)},
		Scenario{Name: "limits-loadtest-over-budget", Sent: ltN, Statuses: stringKeys(ltSt)})

	// GCRA admits at most burst + rate × elapsed (+1 for the request at
	// the edge of the window).
	// What the limiter admitted (whether or not the answer came in time)
	// and refused.
	lt1 := limitTotals(l, routeResource, limiter.ClassLoadTest)
	admitted, blocked := int(lt1.Pass-lt0.Pass), int(lt1.Blocked.QPS-lt0.Blocked.QPS)
	bound := ltBurst + int(float64(ltQPS)*elapsed.Seconds()) + 1
	detail := fmt.Sprintf("%d admitted (%d answered 200) in %s, bound %d (burst %d + %d/s)", admitted, ltPassed, elapsed.Round(time.Millisecond), bound, ltBurst, ltQPS)
	add("limits: load-test requests admitted above the budget (burst + qps × elapsed)", 0, max(0, max(admitted, ltPassed)-bound), detail)
	add("limits: load-test budget used (the limiter admitted at least the burst)", 1, b2i(admitted >= ltBurst), detail)
	add("limits: load-test requests answered other than 200, 429 + Retry-After or unknown (no answer, 502, 504)", 0, ltOther, fmt.Sprint(ltSt))
	add("limits: load-test 429 answers not counted by the limiter (qps)", 0, max(0, lt429-blocked), fmt.Sprintf("%d answered 429, %d counted", lt429, blocked))
	add("limits: load-test refusals counted by the limiter but not answered 429 (beyond the unknown)", 0, max(0, blocked-lt429-ltUnknown), fmt.Sprintf("%d counted, %d answered 429, %d unknown", blocked, lt429, ltUnknown))
	add("limits: production requests under their budget that were blocked", 0, prodBlocked, fmt.Sprint(prodSt))
	add("limits: production requests under their budget answered 200 (those of known outcome)", prodN-prodUnknown, prodSt[http.StatusOK], fmt.Sprint(prodSt))
	prod1 := limitTotals(l, routeResource, limiter.ClassProduction)
	add("limits: production blocks counted by the limiter", 0, int(prod1.Blocked.Total()-prod0.Blocked.Total()), "")
}

// breakerPhase makes the order service's downstream fail until the
// gateway's breaker on its exit to the order service opens, checks that
// it refuses fast while open, heals the downstream and checks that a probe
// after the open interval closes it.
func breakerPhase(ctx context.Context, t *topology, rep *Report, c *http.Client, l *limiter.Limiter, bt breakerTiming, add func(string, int, int, string)) {
	const trips, whileOpen, after = breakerMinRequests, breakerWhileOpen, 10
	state := func() string {
		s, ok := l.BreakerState(ordersResource, "orders-breaker")
		if !ok {
			return "none"
		}
		return s.String()
	}
	b0 := limitTotals(l, ordersResource, limiter.ClassProduction)
	failed0 := t.downstream.failed.Load()
	seq := func(name string, n int) map[int]int {
		st := map[int]int{}
		var slowest time.Duration
		ra := 0
		for i := range n {
			a := postAnswer(ctx, c, t.gwURL, request{id: fmt.Sprintf("%s-%d", name, i)})
			st[a.code]++
			slowest = max(slowest, a.took)
			if a.retryAfter {
				ra++
			}
		}
		st[-1] = int(slowest / time.Millisecond) // reported apart below
		st[-2] = ra
		return st
	}
	scen := func(name string, n int, st map[int]int) {
		clean := map[int]int{}
		for k, v := range st {
			if k >= 0 {
				clean[k] = v
			}
		}
		rep.Scenarios = append(rep.Scenarios, Scenario{Name: name, Sent: n, Statuses: stringKeys(clean)})
	}

	// 1. The downstream fails: the first minRequests calls reach it and
	// fail (an error count of minRequests in the window; the earlier
	// successes do not dilute it), which opens the breaker.
	t.downstream.on.Store(true)
	stTrip := seq("breaker-trip", trips)
	scen("breaker-downstream-failing", trips, stTrip)
	add("breaker: calls that reached the failing downstream", trips, int(t.downstream.failed.Load()-failed0), fmt.Sprint(stTrip))
	add("breaker: failing calls answered 503", trips, stTrip[http.StatusServiceUnavailable], "")
	openAfterTrip := b2i(state() == "open")
	add("breaker: open after the failures", 1, openAfterTrip, state())

	// 2. While open (the downstream still failing), calls are refused at
	// the gateway without being sent: fast, 503 with Retry-After, counted.
	stOpen := seq("breaker-open", whileOpen)
	scen("breaker-open-refused", whileOpen, stOpen)
	reached := int(t.downstream.failed.Load() - failed0 - trips)
	add("breaker: calls that reached the downstream while open", 0, reached, "")
	add("breaker: calls refused while open with 503 + Retry-After", whileOpen, min(stOpen[http.StatusServiceUnavailable], stOpen[-2]), fmt.Sprint(stOpen))
	fast := b2i(time.Duration(stOpen[-1])*time.Millisecond < bt.fast)
	add(fmt.Sprintf("breaker: refusals are fast (slowest under %s: twice the observed median, at least 500ms)", bt.fast.Round(time.Millisecond)), 1, fast, fmt.Sprintf("slowest %dms", stOpen[-1]))
	b1 := limitTotals(l, ordersResource, limiter.ClassProduction)
	add("breaker: refusals counted by the limiter (breaker)", whileOpen, int(b1.Blocked.Breaker-b0.Blocked.Breaker), "")

	// 3. The downstream heals; after the open interval one probe succeeds
	// and closes the breaker; then everything passes.
	t.downstream.on.Store(false)
	time.Sleep(bt.openFor + 20*time.Millisecond)
	stProbe := seq("breaker-probe", 1)
	add("breaker: the probe after the open interval passes", 1, stProbe[http.StatusOK], fmt.Sprint(stProbe))
	add("breaker: closed again after the probe", 1, b2i(state() == "closed"), state())
	stAfter := seq("breaker-healed", after)
	scen("breaker-healed", after+1, mergeCounts(stProbe, stAfter))
	add("breaker: calls answered 200 once healed", after, stAfter[http.StatusOK], fmt.Sprint(stAfter))
	b2 := limitTotals(l, ordersResource, limiter.ClassProduction)
	add("breaker: refusals after healing", 0, int(b2.Blocked.Breaker-b1.Blocked.Breaker), "")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mergeCounts(a, b map[int]int) map[int]int {
	out := map[int]int{}
	for _, m := range []map[int]int{a, b} {
		for k, v := range m {
			if k >= 0 {
				out[k] += v
			}
		}
	}
	return out
}
