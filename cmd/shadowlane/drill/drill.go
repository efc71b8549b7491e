package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/grpc"
	"github.com/shadowlane/shadowlane/adapters/grpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Options configure a drill.
type Options struct {
	Requests    int           // requests per scenario (default 20)
	Concurrency int           // parallel clients (default 8)
	Timeout     time.Duration // per request (default 5s)
	Logger      *slog.Logger  // shadowlane's own logs (default: discarded)
	Backends    Backends      // real stores and brokers (default: embedded ones)

	// A timed run: besides the fixed scenarios, send Rate requests per
	// second for Duration, classes mixed by Mix (default DefaultMix).
	Duration time.Duration
	Rate     int
	Mix      Mix
	Progress Progress // told how the timed run goes (nil: silent)

	// Faults puts a loopback TCP fault proxy in front of every store and
	// broker the shop reaches over TCP and, during the timed phase, kills,
	// blackholes and slows each in turn (faults.go). Needs Duration.
	Faults bool
	// Notes is told what the drill is about to do (the fault schedule);
	// nil: nothing.
	Notes io.Writer
}

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

// routedHops are the hops whose instance is chosen by environment routing.
var routedHops = []string{"orders", "inventory", "ledger"}

func envName(env string) string {
	if env == "" {
		return "trunk"
	}
	return env
}

type topology struct {
	rec                   *shop.Recorder
	gw, orders, inventory *shadowlane.Runtime
	ordersProj            *shadowlane.Runtime // the proj-a instance of orders
	invCfg                shadowlane.Config   // inventory's config (the drill reconfigures its routing)
	gwURL, adminAddr      string
	adminToken            string
	lanes                 map[string][]string // hop -> environments with an instance ("" = trunk)
	closers               []func()
	downstream            flakySwitch // limits.go: the relay in front of inventory fails while on
	deadlines             deadlineLog // deadline.go
}

func (t *topology) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
}

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func serveHTTP(t *topology, h http.Handler) (string, error) {
	ln, err := listen()
	if err != nil {
		return "", err
	}
	return serveOn(t, ln, h), nil
}

func serveOn(t *topology, ln net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.closers = append(t.closers, func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// The project environment of the drill: orders and ledger have a proj-a
// instance, inventory (in between) only a trunk one.
const projEnv = "proj-a"

func start(ctx context.Context, o Options, store *shop.Store) (*topology, error) {
	t := &topology{rec: shop.NewRecorder(), adminToken: randHex(16)}
	logger := o.Logger
	var err error
	fail := func(e error) (*topology, error) { t.close(); return nil, e }

	payURL, err := serveHTTP(t, shop.NewPaymentProvider(t.rec, "payment"))
	if err != nil {
		return fail(err)
	}
	mockURL, err := serveHTTP(t, shop.NewPaymentProvider(t.rec, "wallet"))
	if err != nil {
		return fail(err)
	}
	mockHost := strings.TrimPrefix(mockURL, "http://")

	// Listen first: the instance registry file lists every address.
	var invLn, relayLn, ledgerLn, ledgerProjLn net.Listener
	for _, l := range []*net.Listener{&invLn, &relayLn, &ledgerLn, &ledgerProjLn} {
		if *l, err = listen(); err != nil {
			return fail(err)
		}
		ln := *l
		t.closers = append(t.closers, func() { ln.Close() })
	}
	dir, err := os.MkdirTemp("", "shadowlane-drill-")
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { os.RemoveAll(dir) })
	regFile := filepath.Join(dir, "instances.json")
	reg := map[string]any{"services": map[string][]envtag.Endpoint{
		"inventory": {{Addr: relayLn.Addr().String()}}, // the OTel-only relay in front of inventory; trunk only
		"ledger":    {{Addr: ledgerLn.Addr().String()}, {Addr: ledgerProjLn.Addr().String(), Env: projEnv}},
	}}
	js, _ := json.Marshal(reg)
	if err := os.WriteFile(regFile, js, 0o600); err != nil {
		return fail(err)
	}
	routing := shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: regFile}}
	t.lanes = map[string][]string{"orders": {"", projEnv}, "inventory": {""}, "ledger": {"", projEnv}}

	// ledger: internal HTTP, a trunk and a proj-a instance (SHADOWLANE_ENV).
	for _, inst := range []struct {
		env string
		ln  net.Listener
	}{{"", ledgerLn}, {projEnv, ledgerProjLn}} {
		lrt, err := shadowlane.New(shadowlane.Config{Service: "ledger", Env: inst.env, Trust: shadowlane.TrustConfig{Mode: "internal"}},
			shadowlane.WithLogger(logger))
		if err != nil {
			return fail(err)
		}
		t.closers = append(t.closers, func() { lrt.Close() })
		serveOn(t, inst.ln, shop.NewLedger(lrt, t.rec))
	}

	// inventory: internal; every payment provider is a third party; the
	// wallet has a mock; the ledger is ours, reached by environment routing.
	t.invCfg = shadowlane.Config{Service: "inventory", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"ledger"}, Mocks: []shadowlane.MockConfig{{Host: mockHost, Path: "/v1/*",
			Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"charged":true,"by":"mock"}`}}},
		Routing: routing}
	t.inventory, err = shadowlane.New(t.invCfg, shadowlane.WithLogger(logger))
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { t.inventory.Close() })
	ledgerTr := envtag.NewTransport(t.inventory.Registry(), envtag.WithServices("ledger"), envtag.WithPolicyFunc(t.inventory.RoutingPolicy))
	t.closers = append(t.closers, func() { ledgerTr.Close() })
	ledger := middleware.Client(&http.Client{Transport: ledgerTr}, middleware.WithRuntime(t.inventory))
	invURL := serveOn(t, invLn, shop.NewInventory(t.inventory, t.rec, payURL, mockURL, shop.WithLedger(ledger)))
	serveOn(t, relayLn, t.downstream.wrap(shop.NewRelay(t.rec, invURL)))

	// orders: internal gRPC, a trunk and a proj-a instance; each may call
	// inventory (ours), found in the registry.
	var orderAddrs [2]string
	for i, env := range []string{"", projEnv} {
		ort, err := shadowlane.New(shadowlane.Config{Service: "orders", Env: env, Trust: shadowlane.TrustConfig{Mode: "internal"},
			Outbound: shadowlane.OutboundConfig{Allow: []string{"inventory"}}, Routing: routing}, shadowlane.WithLogger(logger))
		if err != nil {
			return fail(err)
		}
		t.closers = append(t.closers, func() { ort.Close() })
		if env == "" {
			t.orders = ort
		} else {
			t.ordersProj = ort
		}
		invTr := envtag.NewTransport(ort.Registry(), envtag.WithServices("inventory"), envtag.WithPolicyFunc(ort.RoutingPolicy))
		t.closers = append(t.closers, func() { invTr.Close() })
		gs := shop.NewOrdersServer(ort, &shop.Orders{Rec: t.rec, Inventory: "http://inventory", Env: env, Store: store, Finished: t.deadlines.finished,
			Client: middleware.Client(&http.Client{Transport: invTr}, middleware.WithRuntime(ort))})
		healthpb.RegisterHealthServer(gs, health.NewServer())
		gln, err := listen()
		if err != nil {
			return fail(err)
		}
		go gs.Serve(gln)
		t.closers = append(t.closers, gs.Stop)
		orderAddrs[i] = gln.Addr().String()
	}

	// gateway: edge with a fresh signing key and an admin endpoint (kill switch).
	t.gw, err = shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "gateway",
		Trust: shadowlane.TrustConfig{Mode: "edge", Keys: []shadowlane.KeyConfig{{ID: "drill", Secret: randHex(32)}}},
		Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:0", Token: t.adminToken},
		// load-test gRPC calls go only to allow-listed authorities
		Outbound: shadowlane.OutboundConfig{Allow: []string{"orders"}},
		Routing:  shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Cookie: "shadowlane-env", Query: "env"}}}),
		shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithLogger(logger), shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { t.gw.Close() })
	t.adminAddr = t.gw.AdminAddr()
	// One client connection to both orders instances: the envbalancer
	// picks per call by the mark's environment tag.
	res := envbalancer.ManualResolver("drill", envtag.Endpoint{Addr: orderAddrs[0]}, envtag.Endpoint{Addr: orderAddrs[1], Env: projEnv})
	conn, err := grpc.NewClient("drill:///orders", append(slgrpc.DialOptions(slgrpc.WithRuntime(t.gw)), shop.LimitDialOption(t.gw),
		grpc.WithResolvers(res), envbalancer.DialOption(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { conn.Close() })
	if err := waitLane(ctx, conn, orderAddrs[1], o.Timeout); err != nil {
		return fail(err)
	}
	t.gwURL, err = serveHTTP(t, withDeadline(shop.NewGateway(t.gw, t.rec, conn), o.Timeout))
	if err != nil {
		return fail(err)
	}
	return t, nil
}

// waitLane returns once a proj-a call on conn reaches the proj-a instance
// at addr: until its connection is ready, proj-a calls fall back to trunk,
// which would blur the routing counts.
func waitLane(ctx context.Context, conn *grpc.ClientConn, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = propagation.With(ctx, propagation.Mark{Env: projEnv})
	hc := healthpb.NewHealthClient(conn)
	for {
		var p peer.Peer
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		if err == nil && p.Addr != nil && p.Addr.String() == addr {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("drill: the %s orders instance did not become ready: %v", projEnv, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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

// Run runs the drill and returns its report; err is for setup failures only
// (violations are in the report).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Requests <= 0 {
		o.Requests = 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	keepAlive() // timed.go: reuse loopback connections at every hop
	started := time.Now()
	tmp, err := os.MkdirTemp("", "shadowlane-drill-stores-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	st, err := openStores(ctx, o.Backends, tmp, o.Faults)
	if err != nil {
		return nil, fmt.Errorf("drill: opening the stores: %w", err)
	}
	defer st.close()
	lanes, err := st.startConsumers(ctx) // trunk ledger writer + proj-a lane (lanes.go)
	if err != nil {
		return nil, fmt.Errorf("drill: starting the ledger consumer: %w", err)
	}
	if err := st.startShipping(ctx); err != nil { // buses.go
		return nil, err
	}
	if err := st.startFulfilment(ctx); err != nil {
		return nil, err
	}
	shadow0 := shadow.Snapshot()
	t, err := start(ctx, o, st.store)
	if err != nil {
		return nil, fmt.Errorf("drill: starting the shop: %w", err)
	}
	defer t.close()

	run := "drill-" + started.UTC().Format("20060102-150405")
	kr := t.gw.Keyring()
	exp := time.Now().Add(time.Hour)
	tok, _ := kr.Sign(run, "", exp)
	envTok, _ := kr.Sign(run, "proj-a", exp)
	expiredTok, _ := kr.Sign(run, "", time.Now().Add(-time.Minute))
	otherTok, _ := kr.Sign(run+"-other", "", exp)
	badSig := tok[:len(tok)-4] + "AAAA"
	if strings.HasSuffix(tok, "AAAA") {
		badSig = tok[:len(tok)-4] + "BBBB"
	}
	lt := propagation.Mark{Run: run}
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	simple := func(name, query string, h map[string]string) func(int) request {
		return func(i int) request {
			return request{id: fmt.Sprintf("%s-%d", name, i), query: query, headers: h}
		}
	}
	scenarios := []expectation{
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

	client := &http.Client{Timeout: o.Timeout + clientGrace(o.Timeout)}
	rep := &Report{Run: run, Started: started, Hops: hops, Meta: map[string]string{"gateway": t.gwURL}}
	// The edge tag source (routing.tagSource at the gateway): a request
	// whose cookie or query parameter names proj-a is routed like one with
	// the mark header. Each source runs when the edge applies it.
	rep.Routing.EdgeTagSource = map[string]bool{
		"cookie": probeTag(ctx, client, t.gwURL+"/mark", "Cookie", "shadowlane-env="+projEnv),
		"query":  probeTag(ctx, client, t.gwURL+"/mark?env="+projEnv, "", ""),
	}
	if rep.Routing.EdgeTagSource["cookie"] {
		scenarios = append(scenarios, expectation{name: "env-from-cookie", build: simple("env-from-cookie", "", hdr("Cookie", "shadowlane-env="+projEnv)), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production"})
	}
	if rep.Routing.EdgeTagSource["query"] {
		scenarios = append(scenarios, expectation{name: "env-from-query", build: simple("env-from-query", "env="+projEnv, nil), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production"})
	}
	col := newCollector(time.Now())
	var timed timedResult
	var plan faultPlan
	if o.Duration > 0 && o.Rate > 0 {
		var fdone chan []Fault
		fctx, fcancel := context.WithCancel(ctx)
		if o.Faults {
			plan = planFaults(st.proxies, o.Duration)
			plan.print(o.Notes)
			fdone = make(chan []Fault, 1)
			tstart := time.Now()
			go func() { fdone <- plan.run(fctx, tstart, col.start) }()
		}
		timed = runTimed(ctx, o, client, t.gwURL, run, tok, col)
		fcancel()
		rep.Meta["timed"] = fmt.Sprintf("%d requests in %s (%.0f/s asked %d/s); in-flight cap %d reached %.0f%% of the time (adaptive, lowest %d)", sumMap(timed.sent), timed.elapsed.Round(time.Millisecond),
			float64(sumMap(timed.sent))/timed.elapsed.Seconds(), o.Rate, timed.inflight, 100*timed.capped.Seconds()/timed.elapsed.Seconds(), timed.lowest)
		if fdone != nil {
			rep.Faults = <-fdone
			// Let the clients' pools and reconnects settle before the
			// fixed scenarios.
			time.Sleep(time.Second)
		}
	}
	picks0 := envtag.Snapshot()
	statuses := map[string]map[int]int{}
	codes := map[string]int{} // request id -> HTTP status (0: no answer)
	slowest := map[string]time.Duration{}
	send := func(sc expectation) {
		st := map[int]int{}
		var mu sync.Mutex
		sem := make(chan struct{}, o.Concurrency)
		var wg sync.WaitGroup
		for i := 0; i < o.Requests; i++ {
			r := sc.build(i)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				code := post(ctx, client, t.gwURL, r)
				d := time.Since(t0)
				col.add(classOf(sc), t0, d, code)
				mu.Lock()
				st[code]++
				codes[r.id] = code
				if d > slowest[sc.name] {
					slowest[sc.name] = d
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		statuses[sc.name] = st
		rep.Scenarios = append(rep.Scenarios, Scenario{Name: sc.name, Sent: o.Requests, Statuses: stringKeys(st)})
	}
	for _, sc := range scenarios {
		send(sc)
	}

	// Kill switch at the edge, flipped through the admin endpoint.
	if err := t.admin(ctx, false, "drill kill switch"); err != nil {
		return nil, err
	}
	killEdge := expectation{name: "killswitch-edge-loadtest", build: simple("killswitch-edge-loadtest", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), status: 503, reaches: []string{}}
	killProd := expectation{name: "killswitch-edge-production", build: simple("killswitch-edge-production", "", nil), status: 200, payClass: "production"}
	send(killEdge)
	send(killProd)
	if err := t.admin(ctx, true, ""); err != nil {
		return nil, err
	}
	// Kill switch at an internal service (API): the refusal travels back as 503.
	t.inventory.SetLoadTest(false, "inventory maintenance")
	killInt := expectation{name: "killswitch-internal-loadtest", build: simple("killswitch-internal-loadtest", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", tok)), want: lt, status: 503, reaches: []string{"gateway", "orders", "relay"}}
	send(killInt)
	t.inventory.SetLoadTest(true, "")
	scenarios = append(scenarios, killEdge, killProd, killInt)

	// Strict mode for one service: inventory's routing config makes the
	// ledger strict (a config reload). A tag without a ledger lane then
	// fails at once instead of falling back; proj-a still has its lane. A
	// reload with an invalid routing section is refused and keeps it.
	strictCfg := t.invCfg
	strictCfg.Routing.StrictServices = []string{"ledger"}
	strictErr := t.inventory.Apply(strictCfg)
	badCfg := strictCfg
	badCfg.Routing.Fallback = map[string][]string{"proj-z": {"proj-z"}}
	badErr := t.inventory.Apply(badCfg)
	kept := 0
	if strictErr == nil && badErr != nil && t.inventory.RoutingPolicy().Strict("ledger") {
		kept = 1
	}
	strictMiss := expectation{name: "strict-ledger-no-lane", build: simple("strict-ledger-no-lane", "", hdr("X-Shadowlane-Env", "proj-z")), want: propagation.Mark{Env: "proj-z"}, status: 503,
		reaches: []string{"gateway", "orders", "relay", "inventory"}, strict: true}
	strictLane := expectation{name: "strict-ledger-lane", build: simple("strict-ledger-lane", "", hdr("X-Shadowlane-Env", projEnv)), want: propagation.Mark{Env: projEnv}, status: 200, payClass: "production", strict: true}
	send(strictMiss)
	send(strictLane)
	if err := t.inventory.Apply(t.invCfg); err != nil {
		return nil, fmt.Errorf("drill: restoring inventory's routing: %w", err)
	}
	scenarios = append(scenarios, strictMiss, strictLane)

	// ---- invariants ----
	add := func(name string, want, got int, detail string) {
		rep.Invariants = append(rep.Invariants, Invariant{Name: name, Expected: want, Observed: got, OK: want == got, Detail: detail})
	}
	// addSpan: a count that requests of unknown outcome may or may not
	// have moved must lie in [lo, hi].
	addSpan := func(name string, sp span, got int, detail string) {
		inv := Invariant{Name: name, Expected: sp.lo, Observed: got, OK: sp.lo <= got && got <= sp.hi, Detail: detail}
		if sp.hi != sp.lo {
			inv.Max = sp.hi
		}
		rep.Invariants = append(rep.Invariants, inv)
	}

	// The stores, read back with plain clients once the ledger consumer
	// has caught up.
	oc := newOutcome(run)
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
	for _, sc := range scenarios {
		refusal := 0
		if sc.status != 200 {
			refusal = sc.status
		}
		for i := 0; i < o.Requests; i++ {
			id := sc.build(i).id
			out := classify(codes[id], refusal)
			oc.add(id, out, sc.want.Run != "", sc.forged)
			count(classOf(sc), out)
		}
	}
	for class, reqs := range timed.ids {
		for _, r := range reqs {
			out := classify(r.code, timedRefusal(class))
			oc.add(r.id, out, class == ClassLoadTest, class == ClassForged)
			count(class, out)
		}
	}
	for _, class := range Classes {
		if c := outs[class]; c != nil {
			rep.Outcomes = append(rep.Outcomes, *c)
		}
	}
	timedInvariants(t, timed, run, o.Faults, add)
	if o.Faults {
		faultInvariants(rep, plan, st, add)
	}
	// The consumers catch up (every group committed up to the end
	// offsets) before the stores are read.
	lanes.caughtUp(ctx, lanes.plans, 60*time.Second)
	rep.Stores, rep.Isolation = st.check(ctx, oc, add)
	lanes.goAway(ctx, run, o.Requests, add) // the proj-a lane goes away; a restarted trunk takes proj-a again (lanes.go)
	lanes.verify(ctx, oc, add)
	rep.Routing.Consumers = st.consumed
	rep.Traffic, rep.Latency = col.summary()
	// The margin past a deadline: twice the slowest class's median round
	// trip (what the machine takes for ordinary work now), at least 1s.
	margin := time.Second
	for _, l := range rep.Latency {
		margin = max(margin, 2*time.Duration(l.P50*float64(time.Millisecond)))
	}
	t.deadlines.invariants(margin, add)
	rep.Blocks = blocks(shadow0, shadow.Snapshot(), t, t.rec)
	var payProd, payBlocked, payMocked, forged span
	// answered: the requests of a scenario that got an answer before
	// their deadline (a 504 is the shop giving up at the deadline: the
	// outcome is unknown, not wrong).
	answered := func(sc expectation) (n int, ids map[string]bool) {
		ids = map[string]bool{}
		for i := 0; i < o.Requests; i++ {
			id := sc.build(i).id
			if c := codes[id]; c != 0 && c != http.StatusGatewayTimeout {
				ids[id] = true
			}
		}
		return len(ids), ids
	}
	for _, sc := range scenarios {
		na, ans := answered(sc)
		add(sc.name+": answered requests answered HTTP "+fmt.Sprint(sc.status), na, statuses[sc.name][sc.status], fmt.Sprintf("%v; %d of %d without an answer before the deadline", statuses[sc.name], o.Requests-na, o.Requests))
		add(sc.name+": requests answered (at least one)", 1, oneIf(na > 0), "")
		reaches := sc.reachesOr()
		for _, hop := range hops {
			should := contains(reaches, hop)
			want := sc.want // at the OTel-only relay: what its W3C baggage carried
			okCount, seenCount, wrongN, wrong := 0, 0, 0, ""
			for i := 0; i < o.Requests; i++ {
				id := sc.build(i).id
				m, seen := t.rec.Mark(hop, id)
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
				add(fmt.Sprintf("%s: %s saw mark %q (answered requests)", sc.name, hop, want.String()), na, okCount, wrong)
				add(fmt.Sprintf("%s: %s saw another mark (any request)", sc.name, hop), 0, wrongN, wrong)
			} else {
				add(fmt.Sprintf("%s: %s never reached", sc.name, hop), 0, seenCount, "")
			}
		}
		// Accepted requests were charged; requests of unknown outcome may
		// have been; refused ones were not.
		lo, hi := statuses[sc.name][200], o.Requests-statuses[sc.name][http.StatusTooManyRequests]
		if sc.status != 200 {
			hi -= statuses[sc.name][sc.status]
		}
		switch sc.payClass {
		case "production":
			payProd = payProd.plus(lo, hi)
		case "loadtest-blocked":
			payBlocked = payBlocked.plus(lo, hi)
		case "mocked":
			payMocked = payMocked.plus(lo, hi)
		}
		if sc.forged {
			forged = forged.plus(na, o.Requests)
		}
	}
	// The timed phase's requests reach the payment provider (production
	// classes) or are blocked there (load-test), and its forged marks
	// (no token) are rejected at the edge.
	for _, class := range []string{ClassProduction, ClassForged, ClassEnv} {
		payProd = payProd.plus(timed.ok[class], timed.sent[class]-timed.refused[class])
	}
	payBlocked = payBlocked.plus(timed.ok[ClassLoadTest], timed.sent[ClassLoadTest]-timed.refused[ClassLoadTest])
	forged = forged.plus(timed.sent[ClassForged]-timed.unknown[ClassForged], timed.sent[ClassForged])
	routingInvariants(t, rep, scenarios, o.Requests, add, answered)
	picks := pickDelta(picks0, envtag.Snapshot())
	rep.Routing.Picks = picks
	var lanePicks, fallbackOrders span
	ledgerMiss := 0
	for _, sc := range scenarios {
		tag := sc.want.Env
		if tag == "" || !contains(sc.reachesOr(), "orders") {
			continue
		}
		na, _ := answered(sc)
		if contains(t.lanes["orders"], tag) {
			lanePicks = lanePicks.plus(na, o.Requests)
		} else {
			fallbackOrders = fallbackOrders.plus(na, o.Requests)
		}
		if sc.strict && sc.status != 200 {
			// Server-side fact: every strict-miss request that reached
			// inventory was refused by the pick at once (ErrNoLane).
			for i := 0; i < o.Requests; i++ {
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
	addSpan("routing counters: orders lane picks (tagged calls served by their own environment)", lanePicks, pc("orders", func(c envtag.Count) int64 { return c.Lane }), "")
	addSpan("routing counters: orders fallback picks (tags without an orders lane)", fallbackOrders, pc("orders", func(c envtag.Count) int64 { return c.Fallback }), "")
	add("routing counters: ledger misses (strict, no lane) = strict-miss requests that reached inventory", ledgerMiss, pc("ledger", func(c envtag.Count) int64 { return c.Miss }), fmt.Sprintf("slowest strict miss %s", slowest["strict-ledger-no-lane"].Round(time.Millisecond)))
	add("routing: a reload with an invalid routing section is refused and keeps the strict ledger", 1, kept, fmt.Sprint(badErr))

	add("third party: load-test calls that reached the payment provider", 0, t.rec.Hits("payment:loadtest")+t.rec.Hits("wallet:loadtest"), "")
	addSpan("third party: load-test calls blocked with shadow.ErrBlocked", payBlocked, t.rec.Hits("payment:blocked"), "")
	addSpan("third party: load-test calls answered by the mock", payMocked, t.rec.Hits("payment:mocked"), "")
	addSpan("third party: production calls that reached the payment provider", payProd, t.rec.Hits("payment:production"), "")
	gs := t.gw.Stats()
	rejected := 0
	for _, n := range gs.TokensRejected {
		rejected += int(n)
	}
	addSpan("edge: forged load-test marks counted as rejected tokens", forged, rejected, fmt.Sprint(gs.TokensRejected))
	sentSpan := func(name string) span { na, _ := answered(scenarioNamed(scenarios, name)); return span{na, o.Requests} }
	addSpan("edge: malformed run ids dropped", sentSpan("malformed-run-id"), int(gs.MarksDropped["malformed_run"]), "")
	addSpan("edge: load-test requests refused by the kill switch", sentSpan("killswitch-edge-loadtest"), int(gs.KillSwitchRefused), "")
	addSpan("internal: load-test requests refused by the kill switch", sentSpan("killswitch-internal-loadtest"), int(t.inventory.Stats().KillSwitchRefused), "")

	rep.Gateway = gs
	if err := limitsPhases(ctx, t, rep, client, o, run, tok, add); err != nil { // limits.go; runs last
		return nil, err
	}
	rep.OK = true
	for _, inv := range rep.Invariants {
		rep.OK = rep.OK && inv.OK
	}
	rep.DurationMS = time.Since(started).Milliseconds()
	return rep, nil
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

// routingInvariants checks, from what each instance recorded, which
// environment's instance served every request at every routed hop, and
// fills the report's routing section.
func routingInvariants(t *topology, rep *Report, scenarios []expectation, n int, add func(string, int, int, string), answered func(expectation) (int, map[string]bool)) {
	rep.Routing.Instances = map[string][]string{}
	for _, hop := range routedHops {
		for _, env := range t.lanes[hop] {
			rep.Routing.Instances[hop] = append(rep.Routing.Instances[hop], envName(env))
		}
	}
	untaggedSent, untaggedTrunk, untaggedProject := 0, 0, 0
	for _, sc := range scenarios {
		tag := sc.want.Env
		na, ans := answered(sc)
		served := Served{Scenario: sc.name, Tag: tag, Hops: map[string]map[string]int{}}
		for _, hop := range routedHops {
			counts := map[string]int{}
			answeredBy := map[string]int{} // of the answered requests
			for i := 0; i < n; i++ {
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
						untaggedProject += c
					}
				}
				if reached {
					untaggedSent += na
					untaggedTrunk += answeredBy["trunk"]
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
			add(fmt.Sprintf("%s: %s served by the %s instance (answered requests)", sc.name, hop, envName(want)), na, answeredBy[envName(want)], fmt.Sprint(counts))
			add(fmt.Sprintf("%s: %s served by another instance (any request)", sc.name, hop), 0, sumMap(counts)-counts[envName(want)], fmt.Sprint(counts))
		}
		rep.Routing.Served = append(rep.Routing.Served, served)
	}
	add("routing: untagged requests served by a project instance (any hop)", 0, untaggedProject, "")
	add("routing: answered untagged requests served by trunk instances (hop visits)", untaggedSent, untaggedTrunk, "")
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
		d := envtag.Count{Service: c.Service, Class: c.Class, Lane: c.Lane - p.Lane, Fallback: c.Fallback - p.Fallback, Trunk: c.Trunk - p.Trunk, Miss: c.Miss - p.Miss}
		if d.Lane|d.Fallback|d.Trunk|d.Miss != 0 {
			out = append(out, d)
		}
	}
	return out
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

func (t *topology) admin(ctx context.Context, on bool, reason string) error {
	u := fmt.Sprintf("http://%s/shadowlane/loadtest?enabled=%t&reason=%s", t.adminAddr, on, strings.ReplaceAll(reason, " ", "+"))
	req, _ := http.NewRequestWithContext(ctx, "POST", u, nil)
	req.Header.Set("Authorization", "Bearer "+t.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("drill: admin endpoint: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("drill: admin endpoint answered %s", resp.Status)
	}
	return nil
}

func post(ctx context.Context, c *http.Client, base string, r request) int {
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
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
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
	r.summaryRouting(w)
	keys := make([]string, 0, len(r.Gateway.TokensRejected))
	for k := range r.Gateway.TokensRejected {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "\nedge token rejections:")
	for _, k := range keys {
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
		envs := make([]string, 0, len(m))
		for e := range m {
			envs = append(envs, e)
		}
		sort.Strings(envs)
		cell := []string{}
		for _, e := range envs {
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
