package drill

// The drill's invariants over the request traffic: what the client knows
// of every request (answered, refused, unknown), the marks every hop saw,
// routing per environment, envtag's pick counters, third parties and the
// edge. The stores' and buses' invariants are in stores.go, buses.go and
// lanes.go; checkStores runs them in order.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
)

// add records an invariant that holds when got equals want.
func (d *drillRun) add(name string, want, got int, detail string) {
	d.rep.Invariants = append(d.rep.Invariants, Invariant{Name: name, Expected: want, Observed: got, OK: want == got, Detail: detail})
}

// addSpan records an invariant over a count that requests of unknown
// outcome may or may not have moved: it holds when got lies in sp.
func (d *drillRun) addSpan(name string, sp span, got int, detail string) {
	inv := Invariant{Name: name, Expected: sp.lo, Observed: got, OK: sp.lo <= got && got <= sp.hi, Detail: detail}
	if sp.hi != sp.lo {
		inv.Max = sp.hi
	}
	d.rep.Invariants = append(d.rep.Invariants, inv)
}

// span is an allowed range of a count.
type span struct{ lo, hi int }

func (s span) plus(lo, hi int) span { return span{s.lo + lo, s.hi + hi} }

func scenarioNamed(l []expectation, name string) expectation {
	for _, sc := range l {
		if sc.name == name {
			return sc
		}
	}
	return expectation{name: name, build: func(i int) request { return request{} }}
}

func (e expectation) reachesOr() []string {
	if e.reaches == nil {
		return hops
	}
	return e.reaches
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// outcomes classifies every request sent (fixed scenarios and timed
// phase) by what the client knows, fills the report's outcome table and
// returns what the stores must hold.
func (d *drillRun) outcomes() *outcome {
	oc := newOutcome(d.run)
	outs := map[string]*Outcome{}
	count := func(class, out string) {
		c := outs[class]
		if c == nil {
			c = &Outcome{Class: class}
			outs[class] = c
		}
		switch out {
		case outAnswered:
			c.Answered++
		case outRefused:
			c.Refused++
		default:
			c.Unknown++
		}
	}
	for _, sc := range d.scenarios {
		refusal := 0
		if sc.status != 200 {
			refusal = sc.status
		}
		for i := 0; i < d.o.Requests; i++ {
			id := sc.build(i).id
			out := classify(d.codes[id], refusal)
			oc.add(id, out, sc.want.Run != "", sc.forged)
			count(classOf(sc), out)
		}
	}
	for class, reqs := range d.timed.ids {
		for _, r := range reqs {
			out := classify(r.code, timedRefusal(class))
			oc.add(r.id, out, class == ClassLoadTest, class == ClassForged)
			count(class, out)
		}
	}
	for _, class := range Classes {
		if c := outs[class]; c != nil {
			d.rep.Outcomes = append(d.rep.Outcomes, *c)
		}
	}
	return oc
}

// checkStores checks the timed phase and the faults, lets the consumers
// catch up, reads every store and bus back, runs the lane-gone phase and
// checks the deadlines.
func (d *drillRun) checkStores(ctx context.Context, lanes *laneDrill) {
	oc := d.outcomes()
	timedInvariants(d.t, d.timed, d.run, d.o.Faults, d.add)
	if d.o.Faults {
		faultInvariants(d.rep, d.plan, d.st, d.add)
	}
	// The consumers catch up (every group committed up to the end
	// offsets) before the stores are read.
	lanes.caughtUp(ctx, lanes.plans, 60*time.Second)
	d.rep.Stores, d.rep.Isolation = d.st.check(ctx, oc, d.add)
	lanes.goAway(ctx, d.run, d.o.Requests, d.add) // the proj-a lane goes away; a restarted trunk takes proj-a again (lanes.go)
	lanes.verify(ctx, oc, d.add)
	lostMark(ctx, d.st, d.run, d.o.Requests, d.rep, d.add) // lostmark.go: the lost-mark guard (testData:)
	d.rep.Routing.Consumers = d.st.consumed
	d.rep.Traffic, d.rep.Latency = d.col.summary()
	// The margin past a deadline: twice the slowest class's median round
	// trip (what the machine takes for ordinary work now), at least 1s.
	margin := time.Second
	for _, l := range d.rep.Latency {
		margin = max(margin, 2*time.Duration(l.P50*float64(time.Millisecond)))
	}
	d.t.deadlines.invariants(margin, d.add)
}

// answered returns the requests of a scenario whose outcome the client
// knows (a 504 is the shop giving up at the deadline, a 502 a call that
// broke under way: the outcome is unknown, not wrong).
func (d *drillRun) answered(sc expectation) (n int, ids map[string]bool) {
	ids = map[string]bool{}
	for i := 0; i < d.o.Requests; i++ {
		id := sc.build(i).id
		if c := d.codes[id]; !unknownCode(c) {
			ids[id] = true
		}
	}
	return len(ids), ids
}

// markInvariants checks, per scenario, the answers and the mark every hop
// saw (or that a hop was never reached).
func (d *drillRun) markInvariants() {
	n := d.o.Requests
	for _, sc := range d.scenarios {
		na, ans := d.answered(sc)
		d.add(sc.name+": answered requests answered HTTP "+fmt.Sprint(sc.status), na, d.statuses[sc.name][sc.status], fmt.Sprintf("%v; %d of %d of unknown outcome (no answer, 502, 504)%s", d.statuses[sc.name], n-na, n, d.odd[sc.name]))
		d.add(sc.name+": requests answered (at least one)", 1, oneIf(na > 0), "")
		reaches := sc.reachesOr()
		for _, hop := range hops {
			should := contains(reaches, hop)
			want := sc.want // at the OTel-only relay: what its W3C baggage carried
			okCount, seenCount, wrongN, wrong := 0, 0, 0, ""
			for i := 0; i < n; i++ {
				id := sc.build(i).id
				m, seen := d.t.rec.Mark(hop, id)
				if seen {
					seenCount++
				}
				if seen && m == want {
					okCount += oneIf(ans[id])
				} else if seen {
					wrongN++
					if wrong == "" {
						wrong = fmt.Sprintf("e.g. saw %q", m.String())
					}
				}
			}
			if should {
				d.add(fmt.Sprintf("%s: %s saw mark %q (answered requests)", sc.name, hop, want.String()), na, okCount, wrong)
				d.add(fmt.Sprintf("%s: %s saw another mark (any request)", sc.name, hop), 0, wrongN, wrong)
			} else {
				d.add(fmt.Sprintf("%s: %s never reached", sc.name, hop), 0, seenCount, "")
			}
		}
	}
}

// payments is what the payment providers may have seen, per class of
// call, and how many forged marks the edge may have rejected.
type payments struct{ prod, blocked, mocked, forged span }

// expectedPayments sums, over the fixed scenarios and the timed phase,
// the calls each payment class must have seen: accepted requests were
// charged; requests of unknown outcome may have been; refused ones were
// not.
func (d *drillRun) expectedPayments() payments {
	var p payments
	n := d.o.Requests
	for _, sc := range d.scenarios {
		na, _ := d.answered(sc)
		lo, hi := d.statuses[sc.name][200], n-d.statuses[sc.name][http.StatusTooManyRequests]
		if sc.status != 200 {
			hi -= d.statuses[sc.name][sc.status]
		}
		switch sc.payClass {
		case "production":
			p.prod = p.prod.plus(lo, hi)
		case "loadtest-blocked":
			p.blocked = p.blocked.plus(lo, hi)
		case "mocked":
			p.mocked = p.mocked.plus(lo, hi)
		}
		if sc.forged {
			p.forged = p.forged.plus(na, n)
		}
	}
	// The timed phase's requests reach the payment provider (production
	// classes) or are blocked there (load-test), and its forged marks
	// (no token) are rejected at the edge.
	timed := d.timed
	for _, class := range []string{ClassProduction, ClassForged, ClassEnv} {
		p.prod = p.prod.plus(timed.ok[class], timed.sent[class]-timed.refused[class])
	}
	p.blocked = p.blocked.plus(timed.ok[ClassLoadTest], timed.sent[ClassLoadTest]-timed.refused[ClassLoadTest])
	p.forged = p.forged.plus(timed.sent[ClassForged]-timed.unknown[ClassForged], timed.sent[ClassForged])
	return p
}

// routingInvariants checks, from what each instance recorded, which
// environment's instance served every request at every routed hop, and
// fills the report's routing section.
func (d *drillRun) routingInvariants() {
	t, rep := d.t, d.rep
	rep.Routing.Instances = map[string][]string{}
	for _, hop := range routedHops {
		for _, env := range t.lanes[hop] {
			rep.Routing.Instances[hop] = append(rep.Routing.Instances[hop], envName(env))
		}
	}
	var untagged untaggedVisits
	for _, sc := range d.scenarios {
		rep.Routing.Served = append(rep.Routing.Served, d.routingOf(sc, &untagged))
	}
	d.add("routing: untagged requests served by a project instance (any hop)", 0, untagged.project, "")
	d.add("routing: answered untagged requests served by trunk instances (hop visits)", untagged.sent, untagged.trunk, "")
}

// untaggedVisits counts the untagged scenarios' visits of the routed hops.
type untaggedVisits struct {
	sent, trunk int // answered requests at hops they must reach; of them, served by trunk
	project     int // any request served by a project instance
}

// routingOf checks which instance served one scenario's requests at every
// routed hop and returns the scenario's row of the routing table.
func (d *drillRun) routingOf(sc expectation, untagged *untaggedVisits) Served {
	t := d.t
	tag := sc.want.Env
	na, ans := d.answered(sc)
	served := Served{Scenario: sc.name, Tag: tag, Hops: map[string]map[string]int{}}
	for _, hop := range routedHops {
		counts := map[string]int{}
		answeredBy := map[string]int{} // of the answered requests
		for i := 0; i < d.o.Requests; i++ {
			id := sc.build(i).id
			if env, ok := t.rec.ServedBy(hop, id); ok {
				counts[envName(env)]++
				if ans[id] {
					answeredBy[envName(env)]++
				}
			}
		}
		if len(counts) > 0 {
			served.Hops[hop] = counts
		}
		reached := contains(sc.reachesOr(), hop)
		if tag == "" {
			for env, c := range counts {
				if env != "trunk" {
					untagged.project += c
				}
			}
			if reached {
				untagged.sent += na
				untagged.trunk += answeredBy["trunk"]
			}
			continue
		}
		if !reached {
			continue
		}
		want := ""
		if contains(t.lanes[hop], tag) {
			want = tag
		}
		d.add(fmt.Sprintf("%s: %s served by the %s instance (answered requests)", sc.name, hop, envName(want)), na, answeredBy[envName(want)], fmt.Sprint(counts))
		d.add(fmt.Sprintf("%s: %s served by another instance (any request)", sc.name, hop), 0, sumMap(counts)-counts[envName(want)], fmt.Sprint(counts))
	}
	return served
}

// pickDelta returns after minus before for the routed services.
func pickDelta(before, after []envtag.Count) []envtag.Count {
	key := func(c envtag.Count) string { return c.Service + "/" + c.Class }
	b := map[string]envtag.Count{}
	for _, c := range before {
		b[key(c)] = c
	}
	var out []envtag.Count
	for _, c := range after {
		if !contains(routedHops, c.Service) {
			continue
		}
		p := b[key(c)]
		d := envtag.Count{Service: c.Service, Class: c.Class, Lane: c.Lane - p.Lane, Fallback: c.Fallback - p.Fallback, Trunk: c.Trunk - p.Trunk, Miss: c.Miss - p.Miss,
			SameZone: c.SameZone - p.SameZone, Spilled: c.Spilled - p.Spilled, Pinned: c.Pinned - p.Pinned, PinRefused: c.PinRefused - p.PinRefused}
		if d.Lane|d.Fallback|d.Trunk|d.Miss != 0 {
			out = append(out, d)
		}
	}
	return out
}

// pickInvariants checks envtag's pick counters over the fixed scenarios
// against what the scenarios sent, and the refused reload.
func (d *drillRun) pickInvariants() {
	t := d.t
	picks := pickDelta(d.picks0, envtag.Snapshot())
	d.rep.Routing.Picks = picks
	var lanePicks, fallbackOrders span
	ledgerMiss := 0
	for _, sc := range d.scenarios {
		tag := sc.want.Env
		if tag == "" || !contains(sc.reachesOr(), "orders") {
			continue
		}
		na, _ := d.answered(sc)
		if contains(t.lanes["orders"], tag) {
			lanePicks = lanePicks.plus(na, d.o.Requests)
		} else {
			fallbackOrders = fallbackOrders.plus(na, d.o.Requests)
		}
		if sc.strict && sc.status != 200 {
			// Server-side fact: every strict-miss request that reached
			// inventory was refused by the pick at once (ErrNoLane).
			for i := 0; i < d.o.Requests; i++ {
				if _, seen := t.rec.Mark("inventory", sc.build(i).id); seen {
					ledgerMiss++
				}
			}
		}
	}
	pc := func(svc string, f func(envtag.Count) int64) int {
		n := 0
		for _, c := range picks {
			if c.Service == svc {
				n += int(f(c))
			}
		}
		return n
	}
	d.addSpan("routing counters: orders lane picks (tagged calls served by their own environment)", lanePicks, pc("orders", func(c envtag.Count) int64 { return c.Lane }), "")
	d.addSpan("routing counters: orders fallback picks (tags without an orders lane)", fallbackOrders, pc("orders", func(c envtag.Count) int64 { return c.Fallback }), "")
	d.add("routing counters: ledger misses (strict, no lane) = strict-miss requests that reached inventory", ledgerMiss, pc("ledger", func(c envtag.Count) int64 { return c.Miss }), fmt.Sprintf("slowest strict miss %s", d.slowest["strict-ledger-no-lane"].Round(time.Millisecond)))
	d.add("routing: a reload with an invalid routing section is refused and keeps the strict ledger", 1, d.kept, fmt.Sprint(d.badErr))
}

// edgeInvariants checks the payment providers' counts and the gateway's
// and inventory's counters, and puts the gateway's stats in the report.
func (d *drillRun) edgeInvariants(pay payments) {
	t := d.t
	d.add("third party: load-test calls that reached the payment provider", 0, t.rec.Hits("payment:loadtest")+t.rec.Hits("wallet:loadtest"), "")
	d.addSpan("third party: load-test calls blocked with shadow.ErrBlocked", pay.blocked, t.rec.Hits("payment:blocked"), "")
	d.addSpan("third party: load-test calls answered by the mock", pay.mocked, t.rec.Hits("payment:mocked"), "")
	d.addSpan("third party: production calls that reached the payment provider", pay.prod, t.rec.Hits("payment:production"), "")
	gs := t.gw.Stats()
	rejected := 0
	for _, n := range gs.TokensRejected {
		rejected += int(n)
	}
	d.addSpan("edge: forged load-test marks counted as rejected tokens", pay.forged, rejected, fmt.Sprint(gs.TokensRejected))
	sentSpan := func(name string) span {
		na, _ := d.answered(scenarioNamed(d.scenarios, name))
		return span{na, d.o.Requests}
	}
	d.addSpan("edge: malformed run ids dropped", sentSpan("malformed-run-id"), int(gs.MarksDropped["malformed_run"]), "")
	d.addSpan("edge: load-test requests refused by the kill switch", sentSpan("killswitch-edge-loadtest"), int(gs.KillSwitchRefused), "")
	d.addSpan("internal: load-test requests refused by the kill switch", sentSpan("killswitch-internal-loadtest"), int(t.inventory.Stats().KillSwitchRefused), "")
	d.rep.Gateway = gs
}
