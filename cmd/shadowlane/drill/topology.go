package drill

// The drill's topology: the demo shop's services on loopback, wired as a
// real deployment would wire them (gateway -> orders -> relay -> inventory
// -> ledger and payment providers), with a proj-a instance of orders and
// of the ledger.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

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

// listeners are the addresses the instance registry file lists, bound
// before the services start.
type listeners struct {
	inv, relay, ledger, ledgerProj net.Listener
}

// start runs the shop's services and returns the topology; t.close stops
// them.
func start(ctx context.Context, o Options, store *shop.Store) (*topology, error) {
	t := &topology{rec: shop.NewRecorder(), adminToken: randHex(16)}
	fail := func(e error) (*topology, error) { t.close(); return nil, e }

	payURL, err := serveHTTP(t, shop.NewPaymentProvider(t.rec, "payment"))
	if err != nil {
		return fail(err)
	}
	mockURL, err := serveHTTP(t, shop.NewPaymentProvider(t.rec, "wallet"))
	if err != nil {
		return fail(err)
	}
	lns, routing, err := t.registry(o.Timeout)
	if err != nil {
		return fail(err)
	}
	if err := t.startLedgers(o.Logger, lns); err != nil {
		return fail(err)
	}
	if err := t.startInventory(o.Logger, lns, routing, payURL, mockURL); err != nil {
		return fail(err)
	}
	orderAddrs, err := t.startOrders(o.Logger, routing, store)
	if err != nil {
		return fail(err)
	}
	if err := t.startGateway(ctx, o, orderAddrs); err != nil {
		return fail(err)
	}
	return t, nil
}

// registry binds the listeners of the services found through the
// instance registry and writes the registry file that lists them.
//
// The routing clients' connect grace is half the request timeout (at
// least the default): the grace abandons a TCP connect to a lane's
// instance that outlasts it, and two in a row eject the instance. The
// drill's services listen on loopback, where a connect completes at once;
// on a starved machine the goroutine that sees it complete may run only
// after a short grace's timer, and the only trunk inventory would be
// ejected although it is up (every untagged order then fails for a
// second or more).
func (t *topology) registry(timeout time.Duration) (listeners, shadowlane.RoutingConfig, error) {
	var lns listeners
	var routing shadowlane.RoutingConfig
	var err error
	// Listen first: the instance registry file lists every address.
	for _, l := range []*net.Listener{&lns.inv, &lns.relay, &lns.ledger, &lns.ledgerProj} {
		if *l, err = listen(); err != nil {
			return lns, routing, err
		}
		ln := *l
		t.closers = append(t.closers, func() { ln.Close() })
	}
	dir, err := os.MkdirTemp("", "shadowlane-drill-")
	if err != nil {
		return lns, routing, err
	}
	t.closers = append(t.closers, func() { os.RemoveAll(dir) })
	regFile := filepath.Join(dir, "instances.json")
	reg := map[string]any{"services": map[string][]envtag.Endpoint{
		"inventory": {{Addr: lns.relay.Addr().String()}}, // the OTel-only relay in front of inventory; trunk only
		"ledger":    {{Addr: lns.ledger.Addr().String()}, {Addr: lns.ledgerProj.Addr().String(), Env: projEnv}},
	}}
	js, _ := json.Marshal(reg)
	if err := os.WriteFile(regFile, js, 0o600); err != nil {
		return lns, routing, err
	}
	routing = shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: regFile},
		Config: envtag.Config{ConnectGrace: envtag.Duration(max(envtag.DefaultConnectGrace, timeout/2))}}
	t.lanes = map[string][]string{"orders": {"", projEnv}, "inventory": {""}, "ledger": {"", projEnv}}
	return lns, routing, nil
}

// startLedgers runs the ledger: internal HTTP, a trunk and a proj-a
// instance (SHADOWLANE_ENV).
func (t *topology) startLedgers(logger *slog.Logger, lns listeners) error {
	for _, inst := range []struct {
		env string
		ln  net.Listener
	}{{"", lns.ledger}, {projEnv, lns.ledgerProj}} {
		lrt, err := shadowlane.New(shadowlane.Config{Service: "ledger", Env: inst.env, Trust: shadowlane.TrustConfig{Mode: "internal"}},
			shadowlane.WithLogger(logger))
		if err != nil {
			return err
		}
		t.closers = append(t.closers, func() { lrt.Close() })
		serveOn(t, inst.ln, shop.NewLedger(lrt, t.rec))
	}
	return nil
}

// startInventory runs inventory: internal; every payment provider is a
// third party; the wallet has a mock; the ledger is ours, reached by
// environment routing. The OTel-only relay sits in front of it.
func (t *topology) startInventory(logger *slog.Logger, lns listeners, routing shadowlane.RoutingConfig, payURL, mockURL string) error {
	mockHost := strings.TrimPrefix(mockURL, "http://")
	t.invCfg = shadowlane.Config{Service: "inventory", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: []string{"ledger"}, Mocks: []shadowlane.MockConfig{{Host: mockHost, Path: "/v1/*",
			Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"charged":true,"by":"mock"}`}}},
		Routing: routing}
	var err error
	t.inventory, err = shadowlane.New(t.invCfg, shadowlane.WithLogger(logger))
	if err != nil {
		return err
	}
	t.closers = append(t.closers, func() { t.inventory.Close() })
	ledgerTr := envtag.NewTransport(t.inventory.Registry(), envtag.WithServices("ledger"), envtag.WithPolicyFunc(t.inventory.RoutingPolicy))
	t.closers = append(t.closers, func() { ledgerTr.Close() })
	ledger := middleware.Client(&http.Client{Transport: ledgerTr}, middleware.WithRuntime(t.inventory))
	invURL := serveOn(t, lns.inv, shop.NewInventory(t.inventory, t.rec, payURL, mockURL, shop.WithLedger(ledger)))
	serveOn(t, lns.relay, t.downstream.wrap(shop.NewRelay(t.rec, invURL)))
	return nil
}

// startOrders runs orders: internal gRPC, a trunk and a proj-a instance;
// each may call inventory (ours), found in the registry. It returns the
// trunk's and the proj-a instance's addresses.
func (t *topology) startOrders(logger *slog.Logger, routing shadowlane.RoutingConfig, store *shop.Store) ([2]string, error) {
	var orderAddrs [2]string
	for i, env := range []string{"", projEnv} {
		ort, err := shadowlane.New(shadowlane.Config{Service: "orders", Env: env, Trust: shadowlane.TrustConfig{Mode: "internal"},
			Outbound: shadowlane.OutboundConfig{Allow: []string{"inventory"}}, Routing: routing}, shadowlane.WithLogger(logger))
		if err != nil {
			return orderAddrs, err
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
			return orderAddrs, err
		}
		go gs.Serve(gln)
		t.closers = append(t.closers, gs.Stop)
		orderAddrs[i] = gln.Addr().String()
	}
	return orderAddrs, nil
}

// startGateway runs the gateway: edge with a fresh signing key and an
// admin endpoint (kill switch), one gRPC connection to both orders
// instances.
func (t *topology) startGateway(ctx context.Context, o Options, orderAddrs [2]string) error {
	var err error
	t.gw, err = shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "gateway",
		Trust: shadowlane.TrustConfig{Mode: "edge", Keys: []shadowlane.KeyConfig{{ID: "drill", Secret: randHex(32)}}},
		Admin: shadowlane.AdminConfig{Addr: "127.0.0.1:0", Token: t.adminToken},
		// load-test gRPC calls go only to allow-listed authorities
		Outbound: shadowlane.OutboundConfig{Allow: []string{"orders"}},
		Routing:  shadowlane.RoutingConfig{TagSource: shadowlane.TagSourceConfig{Cookie: "shadowlane-env", Query: "env"}}}),
		shadowlane.WithoutConfigFile(), shadowlane.WithoutDefault(), shadowlane.WithoutPropagator(),
		shadowlane.WithLogger(o.Logger), shadowlane.WithGetenv(func(string) string { return "" }))
	if err != nil {
		return err
	}
	t.closers = append(t.closers, func() { t.gw.Close() })
	t.adminAddr = t.gw.AdminAddr()
	// One client connection to both orders instances: the envbalancer
	// picks per call by the mark's environment tag.
	res := envbalancer.ManualResolver("drill", envtag.Endpoint{Addr: orderAddrs[0]}, envtag.Endpoint{Addr: orderAddrs[1], Env: projEnv})
	conn, err := grpc.NewClient("drill:///orders", append(slgrpc.DialOptions(slgrpc.WithRuntime(t.gw)), shop.LimitDialOption(t.gw),
		grpc.WithResolvers(res), envbalancer.DialOption(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return err
	}
	t.closers = append(t.closers, func() { conn.Close() })
	if err := waitLane(ctx, conn, orderAddrs[1], o.Timeout); err != nil {
		return err
	}
	t.gwURL, err = serveHTTP(t, withDeadline(shop.NewGateway(t.gw, t.rec, conn), o.Timeout))
	return err
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

// admin flips the gateway's kill switch through its admin endpoint.
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
