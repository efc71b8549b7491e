package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/grpc"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// Options configure a drill.
type Options struct {
	Requests    int           // requests per scenario (default 20)
	Concurrency int           // parallel clients (default 8)
	Timeout     time.Duration // per request (default 5s)
	Logger      *slog.Logger  // shadowlane's own logs (default: discarded)
}

// Invariant is one checked property with expected and observed counts.
type Invariant struct {
	Name     string `json:"name"`
	Expected int    `json:"expected"`
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
	Meta       map[string]string `json:"meta,omitempty"`
}

type topology struct {
	rec                   *shop.Recorder
	gw, orders, inventory *shadowlane.Runtime
	gwURL, adminAddr      string
	adminToken            string
	closers               []func()
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.closers = append(t.closers, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func start(o Options) (*topology, error) {
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

	// inventory: internal; every payment provider is a third party; the wallet has a mock.
	t.inventory, err = shadowlane.New(shadowlane.Config{Service: "inventory", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Mocks: []shadowlane.MockConfig{{Host: mockHost, Path: "/v1/*",
			Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"charged":true,"by":"mock"}`}}}},
		shadowlane.WithLogger(logger))
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { t.inventory.Close() })
	invURL, err := serveHTTP(t, shop.NewInventory(t.inventory, t.rec, payURL, mockURL))
	if err != nil {
		return fail(err)
	}
	relayURL, err := serveHTTP(t, shop.NewRelay(t.rec, invURL))
	if err != nil {
		return fail(err)
	}

	// orders: internal gRPC; may call the relay (ours).
	t.orders, err = shadowlane.New(shadowlane.Config{Service: "orders", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{strings.TrimPrefix(relayURL, "http://")}}}, shadowlane.WithLogger(logger))
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { t.orders.Close() })
	gs := shop.NewOrdersServer(t.orders, &shop.Orders{Rec: t.rec, Inventory: relayURL, Client: middleware.Client(nil, middleware.WithRuntime(t.orders))})
	gln, err := listen()
	if err != nil {
		return fail(err)
	}
	go gs.Serve(gln)
	t.closers = append(t.closers, gs.Stop)

	// gateway: edge with a fresh signing key and an admin endpoint (kill switch).
	t.gw, err = shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "gateway",
		Trust: shadowlane.TrustConfig{Mode: "edge", Keys: []shadowlane.KeyConfig{{ID: "drill", Secret: randHex(32)}}},
		Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:0", Token: t.adminToken}}),
		shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithLogger(logger), shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { t.gw.Close() })
	t.adminAddr = t.gw.AdminAddr()
	conn, err := grpc.NewClient(gln.Addr().String(), append(slgrpc.DialOptions(middleware.WithRuntime(t.gw)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return fail(err)
	}
	t.closers = append(t.closers, func() { conn.Close() })
	t.gwURL, err = serveHTTP(t, shop.NewGateway(t.gw, t.rec, conn))
	if err != nil {
		return fail(err)
	}
	return t, nil
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
}

var hops = []string{"gateway", "orders", "relay", "inventory"}

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
	started := time.Now()
	t, err := start(o)
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
		{name: "loadtest-env-bound-token", build: simple("loadtest-env-bound-token", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Env", "proj-a", "X-Shadowlane-Token", envTok)), want: propagation.Mark{Run: run, Env: "proj-a"}, status: 200, payClass: "loadtest-blocked"},
		{name: "env-tagged-production", build: simple("env-tagged-production", "", hdr("X-Shadowlane-Env", "proj-a")), want: propagation.Mark{Env: "proj-a"}, status: 200, payClass: "production"},
		{name: "forged-no-token", build: simple("forged-no-token", "", hdr("X-Shadowlane-Run", run)), status: 200, payClass: "production", forged: true},
		{name: "forged-bad-signature", build: simple("forged-bad-signature", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", badSig)), status: 200, payClass: "production", forged: true},
		{name: "forged-other-run", build: simple("forged-other-run", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", otherTok)), status: 200, payClass: "production", forged: true},
		{name: "forged-expired", build: simple("forged-expired", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Token", expiredTok)), status: 200, payClass: "production", forged: true},
		{name: "forged-env-not-in-token", build: simple("forged-env-not-in-token", "", hdr("X-Shadowlane-Run", run, "X-Shadowlane-Env", "proj-b", "X-Shadowlane-Token", envTok)), status: 200, payClass: "production", forged: true},
		{name: "forged-baggage-no-token", build: simple("forged-baggage-no-token", "", hdr("Baggage", "shadowlane.run="+run)), status: 200, payClass: "production", forged: true},
		{name: "malformed-run-id", build: simple("malformed-run-id", "", hdr("X-Shadowlane-Run", "r1;DROP TABLE orders", "X-Shadowlane-Token", tok)), status: 200, payClass: "production"},
	}

	client := &http.Client{Timeout: o.Timeout}
	rep := &Report{Run: run, Started: started, Hops: hops, Meta: map[string]string{"gateway": t.gwURL}}
	statuses := map[string]map[int]int{}
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
				code := post(ctx, client, t.gwURL, r)
				mu.Lock()
				st[code]++
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

	// ---- invariants ----
	add := func(name string, want, got int, detail string) {
		rep.Invariants = append(rep.Invariants, Invariant{Name: name, Expected: want, Observed: got, OK: want == got, Detail: detail})
	}
	payProd, payBlocked, payMocked, forged := 0, 0, 0, 0
	for _, sc := range scenarios {
		add(sc.name+": HTTP "+fmt.Sprint(sc.status), o.Requests, statuses[sc.name][sc.status], fmt.Sprint(statuses[sc.name]))
		reaches := sc.reaches
		if reaches == nil {
			reaches = hops
		}
		for _, hop := range hops {
			should := contains(reaches, hop)
			want := sc.want // at the OTel-only relay: what its W3C baggage carried
			okCount, seenCount, wrong := 0, 0, ""
			for i := 0; i < o.Requests; i++ {
				m, seen := t.rec.Mark(hop, sc.build(i).id)
				if seen {
					seenCount++
				}
				if seen && m == want {
					okCount++
				} else if seen && wrong == "" {
					wrong = fmt.Sprintf("e.g. saw %q", m.String())
				}
			}
			if should {
				add(fmt.Sprintf("%s: %s saw mark %q", sc.name, hop, want.String()), o.Requests, okCount, wrong)
			} else {
				add(fmt.Sprintf("%s: %s never reached", sc.name, hop), 0, seenCount, "")
			}
		}
		switch sc.payClass {
		case "production":
			payProd += o.Requests
		case "loadtest-blocked":
			payBlocked += o.Requests
		case "mocked":
			payMocked += o.Requests
		}
		if sc.forged {
			forged += o.Requests
		}
	}
	add("third party: load-test calls that reached the payment provider", 0, t.rec.Hits("payment:loadtest")+t.rec.Hits("wallet:loadtest"), "")
	add("third party: load-test calls blocked with shadow.ErrBlocked", payBlocked, t.rec.Hits("payment:blocked"), "")
	add("third party: load-test calls answered by the mock", payMocked, t.rec.Hits("payment:mocked"), "")
	add("third party: production calls that reached the payment provider", payProd, t.rec.Hits("payment:production"), "")
	gs := t.gw.Stats()
	rejected := 0
	for _, n := range gs.TokensRejected {
		rejected += int(n)
	}
	add("edge: forged load-test marks counted as rejected tokens", forged, rejected, fmt.Sprint(gs.TokensRejected))
	add("edge: malformed run ids dropped", o.Requests, int(gs.MarksDropped["malformed_run"]), "")
	add("edge: load-test requests refused by the kill switch", o.Requests, int(gs.KillSwitchRefused), "")
	add("internal: load-test requests refused by the kill switch", o.Requests, int(t.inventory.Stats().KillSwitchRefused), "")

	rep.Gateway = gs
	rep.OK = true
	for _, inv := range rep.Invariants {
		rep.OK = rep.OK && inv.OK
	}
	rep.DurationMS = time.Since(started).Milliseconds()
	return rep, nil
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
	fmt.Fprintf(w, "topology: gin gateway (edge) -> gRPC orders (internal) -> OTel-only relay -> HTTP inventory (internal) -> payment providers (third party)\n\n")
	failed := 0
	for _, inv := range r.Invariants {
		mark := "ok  "
		if !inv.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s %-80s expected %4d  observed %4d", mark, inv.Name, inv.Expected, inv.Observed)
		if !inv.OK && inv.Detail != "" {
			fmt.Fprintf(w, "  (%s)", inv.Detail)
		}
		fmt.Fprintln(w)
	}
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
