package evidence

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane"
)

// The answer's types are the runtime's ([shadowlane.RunStatus]): the
// contract has one definition, the side that writes it.
type (
	// Status is one service's answer for one run (cumulative for that run
	// within the process).
	Status = shadowlane.RunStatus
	// Entry counts the marked requests of one entry point (http | grpc |
	// kafka:<topic> ...) and route.
	Entry = shadowlane.RunEntry
	// Decision counts one shadow decision (redirect | block | guard |
	// refuse | mock | pass) of a store (sql | redis | kafka | ...) for a
	// target.
	Decision = shadowlane.RunDecision
	// Error counts one kind of error.
	Error = shadowlane.RunErrorRows
)

// MaxBody is the largest status answer Fetch reads.
const MaxBody = 4 << 20

// Fetch reads base + /shadowlane/status?run=RUN (base: "http://host:port",
// with or without a trailing slash or the /shadowlane/status path) with a
// plain client (10s timeout, no proxy from the environment).
func Fetch(ctx context.Context, base, run string) (Status, error) {
	return FetchWith(ctx, defaultClient, base, run)
}

var defaultClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}

// FetchWith is Fetch with the given client.
func FetchWith(ctx context.Context, c *http.Client, base, run string) (Status, error) {
	u, err := StatusURL(base, run)
	if err != nil {
		return Status{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("%s: %s: %.200s", u, resp.Status, body)
	}
	if len(body) > MaxBody {
		return Status{}, fmt.Errorf("%s: answer larger than %d bytes", u, MaxBody)
	}
	var s Status
	if err := json.Unmarshal(body, &s); err != nil {
		return Status{}, fmt.Errorf("%s: not a shadowlane status: %w", u, err)
	}
	if s.Run != "" && s.Run != run {
		return Status{}, fmt.Errorf("%s: answered for run %q, not %q (a service without per-run evidence?)", u, s.Run, run)
	}
	if s.Run == "" && s.Entries == nil && s.Decisions == nil && !s.Known {
		return Status{}, fmt.Errorf("%s: the answer has no per-run evidence (the service's shadowlane predates it?)", u)
	}
	return s, nil
}

// StatusURL is the status URL of base for run.
func StatusURL(base, run string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("service %q: want an admin base URL like http://127.0.0.1:9464", base)
	}
	p := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(p, "/shadowlane/status") {
		p += "/shadowlane/status"
	}
	u.Path = p
	u.RawQuery = url.Values{"run": {run}}.Encode()
	return u.String(), nil
}

// Diff is after - before, count by count (before usually all zero).
func Diff(before, after Status) Status {
	d := after
	d.Entries = nil
	d.Decisions = nil
	d.Errors = nil
	be := map[[2]string]Entry{}
	for _, e := range before.Entries {
		be[[2]string{e.Entry, e.Route}] = e
	}
	for _, e := range after.Entries {
		b := be[[2]string{e.Entry, e.Route}]
		e.Marked -= b.Marked
		e.Refused -= b.Refused
		if e.Marked != 0 || e.Refused != 0 {
			d.Entries = append(d.Entries, e)
		}
	}
	bd := map[[4]string]int64{}
	for _, x := range before.Decisions {
		bd[[4]string{x.Store, x.Target, x.Decision, x.To}] += x.N
	}
	for _, x := range after.Decisions {
		x.N -= bd[[4]string{x.Store, x.Target, x.Decision, x.To}]
		if x.N != 0 {
			d.Decisions = append(d.Decisions, x)
		}
	}
	br := map[string]int64{}
	for _, e := range before.Errors {
		br[e.Reason] += e.N
	}
	for _, e := range after.Errors {
		e.N -= br[e.Reason]
		if e.N != 0 {
			d.Errors = append(d.Errors, e)
		}
	}
	return d
}

// Leaks names what in s indicates load-test traffic reaching production:
// an error whose reason says leak. A "pass" decision is not one: the
// service reports as "pass" what its config lets a marked request do on
// the production side (read-through reads, allow-listed outbound calls);
// writes of marked work never go to production by design, so a service
// that detects one reports it as an error of kind leak.
func Leaks(s Status) []string {
	var out []string
	for _, e := range s.Errors {
		if isLeak(e.Reason) && e.N > 0 {
			out = append(out, fmt.Sprintf("error %q x%s", e.Reason, Group(e.N)))
		}
	}
	return out
}

func isLeak(reason string) bool { return strings.Contains(strings.ToLower(reason), "leak") }

var storeNoun = map[string]string{
	"sql": "SQL statements", "redis": "Redis commands", "kafka": "Kafka records", "nats": "NATS messages",
	"amqp": "AMQP messages", "rabbitmq": "AMQP messages", "http": "outbound HTTP calls", "grpc": "outbound gRPC calls",
	"mongo": "MongoDB operations",
}

// Label is "service@env" ("trunk" for an empty env; the instance when the
// service has no name).
func Label(s Status) string {
	name := s.Service
	if name == "" {
		name = s.Instance
	}
	if name == "" {
		name = "?"
	}
	env := s.Env
	if env == "" {
		env = "trunk"
	}
	return name + "@" + env
}

// Lines words a diff per store, e.g.
//
//	orders@trunk: 6,001 load-test SQL statements -> orders_shadow (redirect), 0 to production, 3 refused (no run column)
//
// plus one line of marked requests per entry.
func Lines(s Status) []string {
	var out []string
	label := Label(s)
	var marked, refused int64
	var routes []string
	for _, e := range s.Entries {
		marked += e.Marked
		refused += e.Refused
		name := orDash(e.Route)
		if strings.Contains(e.Entry, ":") { // a consumer: kafka:<topic> / its group
			name = e.Entry + " (" + orDash(e.Route) + ")"
		}
		routes = append(routes, fmt.Sprintf("%s %s", name, Group(e.Marked)))
	}
	head := fmt.Sprintf("%s: %s marked requests", label, Group(marked))
	if len(routes) > 0 {
		head += " (" + strings.Join(routes, ", ") + ")"
	}
	if refused > 0 {
		head += fmt.Sprintf(", %s refused at the entry", Group(refused))
	}
	out = append(out, head)
	stores := map[string][]Decision{}
	var order []string
	for _, d := range s.Decisions {
		if _, ok := stores[d.Store]; !ok {
			order = append(order, d.Store)
		}
		stores[d.Store] = append(stores[d.Store], d)
	}
	slices.Sort(order)
	var reasons, all []string
	var leaked int64 // production writes the service reported (errors of kind leak)
	for _, e := range s.Errors {
		if isLeak(e.Reason) {
			leaked += e.N
		}
		r := fmt.Sprintf("%s x%s", e.Reason, Group(e.N))
		all = append(all, r)
		if !seamError(e.Reason) {
			reasons = append(reasons, r)
		}
	}
	for _, st := range order {
		var total, ref int64
		var parts []string
		for _, d := range stores[st] {
			total += d.N
			switch d.Decision {
			case "pass":
				parts = append(parts, fmt.Sprintf("%s -> %s (pass: read-through / allowed)", Group(d.N), orDash(firstNonEmpty(d.To, d.Target))))
			case "refuse":
				ref += d.N
			default:
				parts = append(parts, fmt.Sprintf("%s -> %s (%s)", Group(d.N), orDash(firstNonEmpty(d.To, d.Target)), d.Decision))
			}
		}
		noun := storeNoun[st]
		if noun == "" {
			noun = st + " operations"
		}
		line := fmt.Sprintf("%s: %s load-test %s", label, Group(total), noun)
		if len(parts) > 0 {
			line += " " + strings.Join(parts, ", ")
		}
		line += fmt.Sprintf(", %s to production, %s refused", Group(leaked), Group(ref))
		if ref > 0 && len(reasons) > 0 {
			line += " (" + strings.Join(reasons, "; ") + ")"
		}
		out = append(out, line)
	}
	if len(all) > 0 {
		out = append(out, fmt.Sprintf("%s: errors of marked work: %s", label, strings.Join(all, "; ")))
	}
	return out
}

// seamError reports whether reason is one an instrumented seam counts
// itself ("http 503", "sql 23505", "kafka publish"...): an error of the
// work, not the reason of a refusal the application reported.
func seamError(reason string) bool {
	seam, _, ok := strings.Cut(reason, " ")
	if !ok {
		return false
	}
	switch seam {
	case "http", "gin", "grpc", "sql", "redis", "kafka", "amqp", "nats":
		return true
	}
	return false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Group formats n with thousands separators, as the evidence lines and
// the run's summary print counts: 6001 -> "6,001".
func Group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
