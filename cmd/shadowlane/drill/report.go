package drill

// The drill's report: what was sent, what every invariant expected and
// observed, and the text rendering (html.go renders it for a browser).

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/envtag"
)

// Outcome counts one traffic class's requests by what the client knows:
// answered (accepted), refused by policy (wrote nothing), unknown (no
// answer before the deadline, or an error after which the effects are
// unknown: they may be present or absent, only on the request's side, at
// most once per store).
type Outcome struct {
	Class    string `json:"class"`
	Answered int    `json:"answered"`
	Refused  int    `json:"refused"`
	Unknown  int    `json:"unknown"`
}

// Invariant is one checked property with expected and observed counts.
// With Max set, any observed count from Expected to Max holds (a count
// that requests of unknown outcome may or may not have moved).
type Invariant struct {
	Name     string `json:"name"`
	Expected int    `json:"expected"`
	Max      int    `json:"max,omitempty"`
	Observed int    `json:"observed"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail,omitempty"`
}

// Scenario is one kind of traffic sent.
type Scenario struct {
	Name     string         `json:"name"`
	Sent     int            `json:"sent"`
	Statuses map[string]int `json:"statuses"`
}

// Report is the drill's outcome.
type Report struct {
	Run        string            `json:"run"`
	Started    time.Time         `json:"started"`
	DurationMS int64             `json:"durationMs"`
	Scenarios  []Scenario        `json:"scenarios"`
	Invariants []Invariant       `json:"invariants"`
	Gateway    shadowlane.Stats  `json:"gatewayStats"`
	OK         bool              `json:"ok"`
	Hops       []string          `json:"hops"`
	Routing    Routing           `json:"routing"`
	Meta       map[string]string `json:"meta,omitempty"`
	// Stores says which store backs each part of the shop ("sql",
	// "redis", "kafka").
	Stores map[string]string `json:"stores"`
	// Isolation is, per store and target, what the store holds, read back
	// after the run with a plain client (no shadowlane).
	Isolation []Isolation `json:"isolation"`
	// Traffic is the requests sent per class over time.
	Traffic Traffic `json:"traffic"`
	// Latency is the gateway round trip per class.
	Latency []Latency `json:"latency"`
	// Blocks counts refusals by reason, over every hop and store.
	Blocks []Block `json:"blocks"`
	// Outcomes are the requests per class by what the client knows.
	Outcomes []Outcome `json:"outcomes"`
	// Faults is the fault schedule of a --faults run, as injected.
	Faults []Fault `json:"faults,omitempty"`
	// Migrations are the broker migration scenarios (migration.go): NATS
	// -> Kafka, and Kafka -> RabbitMQ when the drill has a RabbitMQ.
	Migrations []*Migration `json:"migrations,omitempty"`
	// Zones is the two-zone drill (zones.go): same zone first and a
	// load-test run pinned to one zone, judged from the instances' own
	// counters.
	Zones *Zones `json:"zones,omitempty"`
}

// Routing is the "routing per env" part of the report: which instance
// served each scenario's requests at each routed hop.
type Routing struct {
	// Instances lists, per routed hop, the environments that run an
	// instance of it ("trunk" or the environment tag).
	Instances map[string][]string `json:"instances"`
	// Served counts, per scenario and routed hop, the requests served by
	// each environment's instance.
	Served []Served `json:"served"`
	// Picks are envtag's pick counters of the routed services over the
	// drill (lane, fallback, trunk, miss per traffic class).
	Picks []envtag.Count `json:"picks"`
	// EdgeTagSource says whether the gateway's routing.tagSource (cookie
	// shadowlane-env, query env) fed the mark, per source.
	EdgeTagSource map[string]bool `json:"edgeTagSource"`
	// Consumers is environment routing on the message buses: which
	// consumer instance (trunk or proj-a lane) handled the accepted
	// orders' messages, per bus, side and class of order.
	Consumers []Consumed `json:"consumers"`
}

// Consumed is one row of [Routing.Consumers].
type Consumed struct {
	Bus     string `json:"bus"`     // kafka, nats, amqp
	Side    string `json:"side"`    // production, load-test
	Class   string `json:"class"`   // which orders, e.g. "proj-a-tagged"
	Want    string `json:"want"`    // the instance that must handle them: trunk or proj-a
	Orders  int    `json:"orders"`  // accepted orders of the class
	ByWant  int    `json:"byWant"`  // of them, handled (exactly once) by Want
	ByOther int    `json:"byOther"` // handlings by any other instance (must be 0)
}

// Served is one scenario's routing outcome.
type Served struct {
	Scenario string                    `json:"scenario"`
	Tag      string                    `json:"tag"` // "" untagged
	Hops     map[string]map[string]int `json:"hops"`
}

func stringKeys(m map[int]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[fmt.Sprint(k)] = v
	}
	return out
}

// Summary renders the report for people.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintf(w, "shadowlane drill %s: %d scenarios, %d invariants, %dms\n", r.Run, len(r.Scenarios), len(r.Invariants), r.DurationMS)
	fmt.Fprintf(w, "topology: gin gateway (edge) -> gRPC orders (internal; trunk + proj-a behind one envbalancer conn) -> OTel-only relay -> HTTP inventory (internal; trunk only) -> HTTP ledger (internal; trunk + proj-a, envtag transport) and payment providers (third party)\n\n")
	if r.Meta["timed"] != "" {
		fmt.Fprintf(w, "timed phase: %s\n", r.Meta["timed"])
	}
	if r.Meta["routing health"] != "" {
		fmt.Fprintf(w, "routing health: %s\n", r.Meta["routing health"])
	}
	if r.Meta["faults"] != "" {
		fmt.Fprintf(w, "faults: %s\n", r.Meta["faults"])
		for _, f := range r.Faults {
			fmt.Fprintf(w, "  %6.1fs - %6.1fs  %-9s %-5s %d connections\n", float64(f.StartMS)/1000, float64(f.EndMS)/1000, f.Kind, f.Target, f.Conns)
		}
	}
	var tot Outcome
	for _, c := range r.Outcomes {
		fmt.Fprintf(w, "requests %-11s answered %6d  refused %6d  unknown %6d\n", c.Class, c.Answered, c.Refused, c.Unknown)
		tot.Answered, tot.Refused, tot.Unknown = tot.Answered+c.Answered, tot.Refused+c.Refused, tot.Unknown+c.Unknown
	}
	fmt.Fprintf(w, "requests %-11s answered %6d  refused %6d  unknown %6d\n", "all", tot.Answered, tot.Refused, tot.Unknown)
	for _, l := range r.Latency {
		fmt.Fprintf(w, "latency %-11s n=%-6d p50 %6.2fms  p90 %6.2fms  p99 %6.2fms  max %6.2fms\n", l.Class, l.N, l.P50, l.P90, l.P99, l.Max)
	}
	fmt.Fprintln(w)
	failed := 0
	for _, inv := range r.Invariants {
		mark := "ok  "
		if !inv.OK {
			mark = "FAIL"
			failed++
		}
		exp := fmt.Sprint(inv.Expected)
		if inv.Max != 0 {
			exp += ".." + fmt.Sprint(inv.Max)
		}
		fmt.Fprintf(w, "%s %-80s expected %4s  observed %4d", mark, inv.Name, exp, inv.Observed)
		if !inv.OK && inv.Detail != "" {
			fmt.Fprintf(w, "  (%s)", inv.Detail)
		}
		fmt.Fprintln(w)
	}
	r.summaryStores(w)
	r.summaryMigration(w)
	r.summaryRouting(w)
	r.summaryZones(w)
	fmt.Fprintf(w, "\nedge token rejections:")
	for _, k := range slices.Sorted(maps.Keys(r.Gateway.TokensRejected)) {
		fmt.Fprintf(w, " %s=%d", k, r.Gateway.TokensRejected[k])
	}
	fmt.Fprintln(w)
	if r.OK {
		fmt.Fprintf(w, "\nPASS: all %d invariants hold\n", len(r.Invariants))
	} else {
		fmt.Fprintf(w, "\nFAIL: %d of %d invariants violated\n", failed, len(r.Invariants))
	}
}

// summaryRouting renders the "routing per env" section.
func (r *Report) summaryRouting(w io.Writer) {
	rt := r.Routing
	fmt.Fprintf(w, "\nrouting per env (instances:")
	for _, hop := range routedHops {
		fmt.Fprintf(w, " %s=%s", hop, strings.Join(rt.Instances[hop], "+"))
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "  %-32s %-8s", "scenario", "tag")
	for _, hop := range routedHops {
		fmt.Fprintf(w, " %-18s", hop)
	}
	fmt.Fprintln(w)
	untagged := map[string]map[string]int{}
	for _, s := range rt.Served {
		if s.Tag == "" {
			for hop, m := range s.Hops {
				if untagged[hop] == nil {
					untagged[hop] = map[string]int{}
				}
				for env, n := range m {
					untagged[hop][env] += n
				}
			}
			continue
		}
		r.routingRow(w, s.Scenario, s.Tag, s.Hops)
	}
	r.routingRow(w, "(all untagged scenarios)", "-", untagged)
	fmt.Fprintf(w, "  picks (lane/fallback/trunk/miss):")
	for _, c := range rt.Picks {
		fmt.Fprintf(w, " %s[%s] %d/%d/%d/%d", c.Service, c.Class, c.Lane, c.Fallback, c.Trunk, c.Miss)
	}
	fmt.Fprintln(w)
	srcs := []string{}
	for _, k := range []string{"cookie", "query"} {
		state := "applied"
		if !rt.EdgeTagSource[k] {
			state = "NOT applied by this build's edge (scenario skipped)"
		}
		srcs = append(srcs, k+" "+state)
	}
	fmt.Fprintf(w, "  edge tag source: %s\n", strings.Join(srcs, ", "))
	if len(rt.Consumers) > 0 {
		fmt.Fprintf(w, "  message bus consumers (orders handled by the instance that must / by another):\n")
		for _, c := range rt.Consumers {
			fmt.Fprintf(w, "    %-5s %-10s %-40s -> %-6s %d/%d, other %d\n", c.Bus, c.Side, c.Class, c.Want, c.ByWant, c.Orders, c.ByOther)
		}
	}
}

func (r *Report) routingRow(w io.Writer, name, tag string, hopsServed map[string]map[string]int) {
	fmt.Fprintf(w, "  %-32s %-8s", name, tag)
	for _, hop := range routedHops {
		m := hopsServed[hop]
		cell := []string{}
		for _, e := range slices.Sorted(maps.Keys(m)) {
			cell = append(cell, fmt.Sprintf("%s=%d", e, m[e]))
		}
		if len(cell) == 0 {
			cell = []string{"-"}
		}
		fmt.Fprintf(w, " %-18s", strings.Join(cell, ","))
	}
	fmt.Fprintln(w)
}

// summaryStores renders the isolation table per store.
func (r *Report) summaryStores(w io.Writer) {
	if len(r.Isolation) == 0 {
		return
	}
	fmt.Fprintf(w, "\nisolation per store (read back with plain clients: %s; %s; %s; %s; amqp %s)\n", r.Stores["sql"], r.Stores["redis"], r.Stores["kafka"], r.Stores["nats"], r.Stores["amqp"])
	fmt.Fprintf(w, "  %-6s %-34s %-10s %8s %8s %7s %6s %8s %8s %5s\n", "store", "target", "side", "expected", "observed", "unknown", "total", "foreign", "refused", "dup")
	for _, in := range r.Isolation {
		mark := ""
		if !in.OK {
			mark = "  FAIL"
		}
		fmt.Fprintf(w, "  %-6s %-34s %-10s %8d %8d %7d %6d %8d %8d %5d%s\n", in.Store, in.Target, in.Side, in.Expected, in.Observed, in.Unknown, in.Total, in.Foreign, in.Refused, in.Dup, mark)
	}
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
