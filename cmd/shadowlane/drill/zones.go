package drill

// The two-zone drill: same zone first and the single-room pressure test
// (a load-test run pinned to one zone). It stands up its own slice of the
// shop in two zones, room-a and room-b, beside the main topology:
//
//	drill client -> zone caller (internal HTTP, zone room-a, envtag transport + envbalancer)
//	                  -> stock   (HTTP, 2 instances in room-a, 2 in room-b)
//	                  -> pricing (gRPC, 2 instances in room-a, 2 in room-b)
//
// Every instance is a shadowlane entry that counts, by itself, the calls
// it served per traffic class and run; the invariants are judged from
// those counters, not from the routing counters (which the report shows
// beside them). The phases: production and an unpinned run stay in the
// caller's zone; a config reload pins the drill's zone run to room-b, and
// its calls then reach only room-b's instances; room-b's instances are
// stopped for real, and the pinned run is refused at the caller (never
// spilled to room-a) while production carries on.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/shadowlane/shadowlane"
	slgrpc "github.com/shadowlane/shadowlane/adapters/slgrpc"
	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/middleware"
	"github.com/shadowlane/shadowlane/propagation"
)

// The zones of the two-zone drill; the caller runs in zoneA.
const (
	zoneA = "room-a"
	zoneB = "room-b"
)

// The zoned services of the two-zone drill.
const (
	zoneHTTPService = "stock"
	zoneGRPCService = "pricing"
)

var zoneServices = []string{zoneHTTPService, zoneGRPCService}

// Zones is the report's zones section: the two-zone slice, what each
// phase sent and which zone's instances served it (their own counters),
// and the routing counters of the zoned services.
type Zones struct {
	// Caller is the zone the calling service runs in.
	Caller string `json:"caller"`
	// Pins are the routing.pin entries in force in the pinned phases.
	Pins map[string]string `json:"pins"`
	// Instances lists every zoned instance with what it counted itself.
	Instances []ZoneInstance `json:"instances"`
	// Phases are the traffic phases, in order.
	Phases []ZonePhase `json:"phases"`
	// Picks are the caller's routing counters per zoned service and class
	// over the phases: same-zone picks, spills, pinned picks and pinned
	// refusals.
	Picks []envtag.Count `json:"picks"`
}

// ZoneInstance is one zoned instance and the calls it counted itself.
type ZoneInstance struct {
	Service    string `json:"service"`
	Zone       string `json:"zone"`
	Name       string `json:"name"`
	Production int64  `json:"production"`
	LoadTest   int64  `json:"loadTest"`
	Stopped    bool   `json:"stopped"` // stopped for real during the drill
}

// ZonePhase is one phase of the two-zone drill.
type ZonePhase struct {
	Name     string `json:"name"`
	Run      string `json:"run,omitempty"` // "" production
	Pinned   string `json:"pinned,omitempty"`
	Want     string `json:"want"` // the zone that must serve it; "refused" when it must be refused
	Sent     int    `json:"sent"`
	Answered int    `json:"answered"`
	Refused  int    `json:"refused"` // refused because the pinned zone had no instance
	Failed   int    `json:"failed"`  // any other failure
	// Served counts, per service and zone, the phase's calls that the
	// instances counted themselves.
	Served map[string]map[string]int64 `json:"served"`
}

// zoneInst is one running zoned instance.
type zoneInst struct {
	service, zone, name, addr string
	rt                        *shadowlane.Runtime
	stop                      func()
	stopped                   bool

	mu   sync.Mutex
	runs map[string]int64 // run ("" production) -> calls served
}

func (z *zoneInst) count(m propagation.Mark) {
	z.mu.Lock()
	z.runs[m.Run]++
	z.mu.Unlock()
}

func (z *zoneInst) counts() map[string]int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	out := make(map[string]int64, len(z.runs))
	for k, v := range z.runs {
		out[k] = v
	}
	return out
}

// zoneTopo is the two-zone slice.
type zoneTopo struct {
	callerCfg shadowlane.Config
	caller    *shadowlane.Runtime
	callerURL string
	insts     []*zoneInst
	res       *manual.Resolver
	grpcEPs   []envtag.Endpoint
	closers   []func()
}

func (zt *zoneTopo) close() {
	for i := len(zt.closers) - 1; i >= 0; i-- {
		zt.closers[i]()
	}
}

// startZones runs the zoned instances and the caller.
func startZones(o Options) (*zoneTopo, error) {
	zt := &zoneTopo{}
	if err := zt.start(o); err != nil {
		zt.close()
		return nil, fmt.Errorf("drill: two-zone slice: %w", err)
	}
	return zt, nil
}

// start runs the slice's parts in order: the zoned instances, the
// caller's runtime, its clients of the zoned services and its server.
// Each part appends its cleanup to zt.closers as it starts; on error the
// caller closes what started.
func (zt *zoneTopo) start(o Options) error {
	httpEPs, err := zt.startInstances(o)
	if err != nil {
		return err
	}
	if err := zt.startCaller(o, httpEPs); err != nil {
		return err
	}
	stock, pricing, err := zt.callerClients()
	if err != nil {
		return err
	}
	return zt.serveCaller(zoneCallerHandler(zt.caller, stock, pricing))
}

// startInstances runs two instances of each zoned service in each zone;
// it returns the HTTP instances' endpoints (the gRPC ones go to
// zt.grpcEPs).
func (zt *zoneTopo) startInstances(o Options) ([]envtag.Endpoint, error) {
	var httpEPs []envtag.Endpoint
	for _, zone := range []string{zoneA, zoneB} {
		for i := 1; i <= 2; i++ {
			for _, svc := range zoneServices {
				inst, err := zt.startInstance(o, svc, zone, i)
				if err != nil {
					return nil, err
				}
				if svc == zoneHTTPService {
					httpEPs = append(httpEPs, envtag.Endpoint{Addr: inst.addr, Zone: zone})
				}
			}
		}
	}
	return httpEPs, nil
}

// startInstance runs instance i of svc in zone: a shadowlane entry (its
// own runtime) that counts the calls it serves.
func (zt *zoneTopo) startInstance(o Options, svc, zone string, i int) (*zoneInst, error) {
	inst := &zoneInst{service: svc, zone: zone, name: fmt.Sprintf("%s-%s-%d", svc, zone, i), runs: map[string]int64{}}
	rt, err := shadowlane.New(shadowlane.Config{Service: svc, Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithLogger(o.Logger))
	if err != nil {
		return nil, err
	}
	inst.rt = rt
	zt.closers = append(zt.closers, func() { rt.Close() })
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	inst.addr = ln.Addr().String()
	if svc == zoneHTTPService {
		inst.serveHTTP(ln)
	} else {
		inst.serveGRPC(ln)
		zt.grpcEPs = append(zt.grpcEPs, envtag.Endpoint{Addr: inst.addr, Zone: zone})
	}
	zt.closers = append(zt.closers, func() { inst.stopOnce() })
	zt.insts = append(zt.insts, inst)
	return inst, nil
}

// serveHTTP serves the HTTP zoned service on ln: it counts each call and
// answers with the instance's name.
func (z *zoneInst) serveHTTP(ln net.Listener) {
	h := middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		z.count(propagation.FromContext(r.Context()))
		io.WriteString(w, z.name)
	}), middleware.WithRuntime(z.rt), middleware.Internal())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	z.stop = func() { srv.Close() }
}

// serveGRPC serves the gRPC zoned service (the health service) on ln,
// counting each call.
func (z *zoneInst) serveGRPC(ln net.Listener) {
	count := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		z.count(propagation.FromContext(ctx))
		return h(ctx, req)
	})
	gs := grpc.NewServer(append(slgrpc.ServerOptions(slgrpc.WithRuntime(z.rt), slgrpc.Internal()), count)...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(ln)
	z.stop = gs.Stop
}

// startCaller writes the HTTP instances to a registry file and starts the
// caller's runtime in zoneA, routing from that registry.
func (zt *zoneTopo) startCaller(o Options, httpEPs []envtag.Endpoint) error {
	dir, err := os.MkdirTemp("", "shadowlane-drill-zones-")
	if err != nil {
		return err
	}
	zt.closers = append(zt.closers, func() { os.RemoveAll(dir) })
	regFile := filepath.Join(dir, "instances.json")
	js, _ := json.Marshal(map[string]any{"services": map[string][]envtag.Endpoint{zoneHTTPService: httpEPs}})
	if err := os.WriteFile(regFile, js, 0o600); err != nil {
		return err
	}
	zt.callerCfg = shadowlane.Config{Service: "zone-caller", Trust: shadowlane.TrustConfig{Mode: "internal"},
		Outbound: shadowlane.OutboundConfig{Allow: zoneServices},
		Routing: shadowlane.RoutingConfig{Registry: shadowlane.RegistryConfig{File: regFile},
			Config: envtag.Config{Zone: zoneA, ConnectGrace: envtag.Duration(max(envtag.DefaultConnectGrace, o.Timeout/2))}}}
	zt.caller, err = shadowlane.New(zt.callerCfg, shadowlane.WithLogger(o.Logger))
	if err != nil {
		return err
	}
	zt.closers = append(zt.closers, func() { zt.caller.Close() })
	return nil
}

// callerClients returns the caller's clients of the zoned services: the
// HTTP one through the envtag transport, the gRPC one through the
// envbalancer.
func (zt *zoneTopo) callerClients() (*http.Client, healthpb.HealthClient, error) {
	tr := envtag.NewTransport(zt.caller.Registry(), envtag.WithServices(zoneHTTPService),
		envtag.WithPolicyFunc(zt.caller.RoutingPolicy), envtag.WithStats(zt.caller.RoutingStats()))
	zt.closers = append(zt.closers, func() { tr.Close() })
	stock := middleware.Client(&http.Client{Transport: tr}, middleware.WithRuntime(zt.caller))

	// The gRPC balancer takes its routing from the service config that
	// the resolver hands it; applyRouting pushes the caller's routing
	// there on every reload.
	zt.res = envbalancer.ManualResolver("drillzones", zt.grpcEPs...)
	sc, err := zt.serviceConfig()
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient("drillzones:///"+zoneGRPCService, append(slgrpc.DialOptions(slgrpc.WithRuntime(zt.caller)),
		grpc.WithResolvers(zt.res), grpc.WithDefaultServiceConfig(sc), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return nil, nil, err
	}
	zt.closers = append(zt.closers, func() { conn.Close() })
	return stock, healthpb.NewHealthClient(conn), nil
}

// zoneCallerHandler is the caller's entry: each call calls both zoned
// services and answers 502 if either failed, else 503 if either was
// refused (its pinned zone had no instance), else 200; the body says how
// each call went.
func zoneCallerHandler(caller *shadowlane.Runtime, stock *http.Client, pricing healthpb.HealthClient) http.Handler {
	return middleware.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		s := callStock(ctx, stock)
		p := callPricing(ctx, pricing)
		switch {
		case s.failed || p.failed:
			w.WriteHeader(http.StatusBadGateway)
		case s.refused || p.refused:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, strings.Join([]string{s.part, p.part}, "; "))
	}), middleware.WithRuntime(caller), middleware.Internal())
}

// zoneCallResult is how one of the caller's calls of a zoned service
// went.
type zoneCallResult struct {
	part            string // "<service>=ok", "=refused: <error>" or "=failed: <error>"
	refused, failed bool
}

func zoneResult(svc string, err error, pinRefused bool) zoneCallResult {
	switch {
	case err == nil:
		return zoneCallResult{part: svc + "=ok"}
	case pinRefused:
		return zoneCallResult{part: svc + "=refused: " + err.Error(), refused: true}
	default:
		return zoneCallResult{part: svc + "=failed: " + err.Error(), failed: true}
	}
}

// callStock calls the HTTP zoned service; a non-200 answer is a failure.
func callStock(ctx context.Context, stock *http.Client) zoneCallResult {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+zoneHTTPService+"/", nil)
	resp, err := stock.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
	}
	return zoneResult(zoneHTTPService, err, err != nil && errors.Is(err, envtag.ErrZonePinned))
}

// callPricing calls the gRPC zoned service.
func callPricing(ctx context.Context, pricing healthpb.HealthClient) zoneCallResult {
	_, err := pricing.Check(ctx, &healthpb.HealthCheckRequest{})
	// envtag.PinError comes through the balancer as Unavailable.
	return zoneResult(zoneGRPCService, err, err != nil && strings.Contains(status.Convert(err).Message(), "pinned to zone"))
}

// serveCaller serves the caller's entry h and sets zt.callerURL.
func (zt *zoneTopo) serveCaller(h http.Handler) error {
	ln, err := listen()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	zt.closers = append(zt.closers, func() { srv.Close() })
	zt.callerURL = "http://" + ln.Addr().String()
	return nil
}

func (z *zoneInst) stopOnce() {
	if !z.stopped {
		z.stopped = true
		z.stop()
	}
}

// serviceConfig is the gRPC service config of the caller's routing in
// force.
func (zt *zoneTopo) serviceConfig() (string, error) {
	return envbalancer.ServiceConfigFor(zt.callerCfg.Routing.Config, zoneGRPCService)
}

// applyRouting reloads the caller with routing r (the HTTP transport
// follows the runtime's policy at once) and hands the same rule to the
// gRPC balancer through the resolver's service config.
func (zt *zoneTopo) applyRouting(r shadowlane.RoutingConfig) error {
	cfg := zt.callerCfg
	cfg.Routing = r
	if err := zt.caller.Apply(cfg); err != nil {
		return err
	}
	zt.callerCfg = cfg
	sc, err := zt.serviceConfig()
	if err != nil {
		return err
	}
	parsed := zt.res.CC().ParseServiceConfig(sc)
	if parsed.Err != nil {
		return parsed.Err
	}
	zt.res.UpdateState(resolver.State{Endpoints: envbalancer.Endpoints(zt.grpcEPs), ServiceConfig: parsed})
	return nil
}

// served returns, per service and zone, what the instances counted for
// run ("" production).
func (zt *zoneTopo) served(run string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, in := range zt.insts {
		if out[in.service] == nil {
			out[in.service] = map[string]int64{}
		}
		out[in.service][in.zone] += in.counts()[run]
	}
	return out
}

func minus(a, b map[string]map[string]int64) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for svc, m := range a {
		out[svc] = map[string]int64{}
		for z, n := range m {
			if d := n - b[svc][z]; d != 0 {
				out[svc][z] = d
			}
		}
	}
	return out
}

// zoneCall sends one request for run to the caller; it returns the HTTP
// status (0: no answer).
func zoneCall(ctx context.Context, c *http.Client, url, run string) int {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, nil)
	if run != "" {
		req.Header.Set("X-Shadowlane-Run", run)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// warm sends run's calls until every instance in zones has served one of
// them (the gRPC subchannels are ready), or the timeout passes.
func (zt *zoneTopo) warm(ctx context.Context, c *http.Client, run string, timeout time.Duration, zones ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		zoneCall(ctx, c, zt.callerURL, run)
		cold := ""
		for _, in := range zt.insts {
			if contains(zones, in.zone) && in.counts()[run] == 0 {
				cold = in.name
			}
		}
		if cold == "" {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("drill: two-zone slice: %s never served a warm-up call", cold)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// zoneDrill is one run of the two-zone drill: the slice, the client that
// calls its caller, the report section it fills and the routing counters
// it reads (st: the caller's, for HTTP; gst: the default runtime's, where
// the gRPC balancer counts).
type zoneDrill struct {
	d       *drillRun
	zt      *zoneTopo
	rep     *Zones
	c       *http.Client
	st, gst *envtag.Stats
}

// zonesPhase runs the two-zone drill and records its invariants and the
// report's zones section.
func (d *drillRun) zonesPhase(ctx context.Context) error {
	o := d.o
	zt, err := startZones(o)
	if err != nil {
		return err
	}
	defer zt.close()
	pinned, free := d.run+"-zb", d.run+"-free"
	zd := &zoneDrill{d: d, zt: zt, rep: &Zones{Caller: zoneA}}
	d.rep.Zones = zd.rep
	zd.c = &http.Client{Timeout: o.Timeout + clientGrace(o.Timeout)}

	// Warm up every connection of the caller's zone: production stays
	// there (same zone first), so its calls reach each room-a instance.
	if err := zt.warm(ctx, zd.c, "", 2*o.Timeout, zoneA); err != nil {
		return err
	}
	zd.st = zt.caller.RoutingStats()
	zd.gst = envtag.DefaultStats() // the gRPC balancer counts in the default runtime's
	picks0 := zd.picks()

	zd.check(zd.phase(ctx, "production", "", zoneA), "production (same zone first)")
	zd.check(zd.phase(ctx, "run-before-pin", pinned, zoneA), "load-test run before the pin (same zone first)")
	pin, err := zd.pinnedPhases(ctx, pinned, free)
	if err != nil {
		return err
	}
	after := zd.roomBDown(ctx, pinned, pin)
	zd.check(zd.phase(ctx, "production-room-b-down", "", zoneA), "production with room-b down")
	zd.record(picks0, after)
	return nil
}

// picks returns the zoned services' routing counters now.
func (zd *zoneDrill) picks() map[string]envtag.Count {
	return zonePicks(zd.st, zd.gst)
}

// phase sends the drill's requests for run ("" production) to the caller,
// counts how they were answered and what the instances served of them,
// and appends the phase to the report. want is the zone that must serve
// them, or "refused".
func (zd *zoneDrill) phase(ctx context.Context, name, run, want string) ZonePhase {
	o, zt := zd.d.o, zd.zt
	before := zt.served(run)
	p := ZonePhase{Name: name, Run: run, Want: want, Sent: o.Requests, Pinned: zt.caller.RoutingPolicy().PinZone(run)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Concurrency)
	for i := 0; i < o.Requests; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code := zoneCall(ctx, zd.c, zt.callerURL, run)
			mu.Lock()
			defer mu.Unlock()
			switch code {
			case http.StatusOK:
				p.Answered++
			case http.StatusServiceUnavailable:
				p.Refused++
			default:
				p.Failed++
			}
		}()
	}
	wg.Wait()
	p.Served = minus(zt.served(run), before)
	zd.rep.Phases = append(zd.rep.Phases, p)
	return p
}

// check records that every call of p was served by want's instances of
// each service, and none by another zone's.
func (zd *zoneDrill) check(p ZonePhase, what string) {
	for _, svc := range zoneServices {
		var other int64
		for z, n := range p.Served[svc] {
			if z != p.Want {
				other += n
			}
		}
		zd.d.add(fmt.Sprintf("zones: %s: %s calls served by %s instances (their own counters)", what, svc, p.Want), p.Sent, int(p.Served[svc][p.Want]), fmt.Sprintf("answered %d, failed %d", p.Answered, p.Failed))
		zd.d.add(fmt.Sprintf("zones: %s: %s calls served outside %s", what, svc, p.Want), 0, int(other), "")
	}
}

// zonePin is the pinned run's phase and the routing counters around it.
type zonePin struct {
	p          ZonePhase
	pin0, pin1 map[string]envtag.Count
}

// pinnedPhases pins run pinned to room-b by a config reload and runs the
// phases under the pin: the pinned run, an unpinned run (free) and
// production.
func (zd *zoneDrill) pinnedPhases(ctx context.Context, pinned, free string) (zonePin, error) {
	zt := zd.zt
	r := zt.callerCfg.Routing
	r.Pin = map[string]string{pinned: zoneB}
	if err := zt.applyRouting(r); err != nil {
		return zonePin{}, fmt.Errorf("drill: pinning the zone run: %w", err)
	}
	zd.rep.Pins = zt.caller.RoutingPolicy().Pins()
	var pin zonePin
	pin.pin0 = zd.picks()
	pin.p = zd.phase(ctx, "pinned-run", pinned, zoneB)
	pin.pin1 = zd.picks()
	zd.check(pin.p, "pinned run")
	zd.check(zd.phase(ctx, "unpinned-run", free, zoneA), "unpinned load-test run")
	zd.check(zd.phase(ctx, "production-while-pinned", "", zoneA), "production while a run is pinned")
	return pin, nil
}

// roomBDown stops room-b for real and checks that the pinned run is then
// refused at the caller, never spilled to room-a, and that the routing
// counters counted the refusals (and, from pin, the pinned picks). It
// returns the routing counters after its phase.
func (zd *zoneDrill) roomBDown(ctx context.Context, pinned string, pin zonePin) map[string]envtag.Count {
	d := zd.d
	zd.stopRoomB(ctx, pinned)
	refused0 := zd.picks()
	down := zd.phase(ctx, "pinned-run-room-b-down", pinned, "refused")
	d.add("zones: pinned run with room-b down: refused at the caller (fail closed)", down.Sent, down.Refused, fmt.Sprintf("answered %d, failed %d", down.Answered, down.Failed))
	var reached int64
	for _, m := range down.Served {
		for _, n := range m {
			reached += n
		}
	}
	d.add("zones: pinned run with room-b down: calls that reached any instance (never spilled to room-a)", 0, int(reached), "")
	after := zd.picks()
	for _, svc := range zoneServices {
		k := svc + "/" + propagation.ClassLoadTest
		d.add(fmt.Sprintf("zones: pinned refusals counted for %s (routing counters)", svc), down.Sent, int(after[k].PinRefused-refused0[k].PinRefused), "")
		d.add(fmt.Sprintf("zones: pinned picks counted for %s in the pinned phase (routing counters)", svc), pin.p.Sent, int(pin.pin1[k].Pinned-pin.pin0[k].Pinned), "")
	}
	return after
}

// stopRoomB stops room-b's instances and waits (up to twice the timeout)
// for the caller to refuse the pinned run.
func (zd *zoneDrill) stopRoomB(ctx context.Context, pinned string) {
	for _, in := range zd.zt.insts {
		if in.zone == zoneB {
			in.stopOnce()
		}
	}
	// Let the clients see room-b go: until they do, a call may fail on a
	// connection (HTTP: ejection after failures; gRPC: TRANSIENT_FAILURE).
	settle := time.Now().Add(2 * zd.d.o.Timeout)
	for zoneCall(ctx, zd.c, zd.zt.callerURL, pinned) != http.StatusServiceUnavailable && time.Now().Before(settle) {
		time.Sleep(5 * time.Millisecond)
	}
}

// record fills the report's routing counters over the slice (after minus
// picks0) and its instances with what each counted itself.
func (zd *zoneDrill) record(picks0, after map[string]envtag.Count) {
	rep := zd.rep
	rep.Picks = append(rep.Picks, countsDelta(picks0, after)...)
	for _, in := range zd.zt.insts {
		var prod, lt int64
		for run, n := range in.counts() {
			if run == "" {
				prod += n
			} else {
				lt += n
			}
		}
		rep.Instances = append(rep.Instances, ZoneInstance{Service: in.service, Zone: in.zone, Name: in.name, Production: prod, LoadTest: lt, Stopped: in.stopped})
	}
	sort.Slice(rep.Instances, func(i, j int) bool { return rep.Instances[i].Name < rep.Instances[j].Name })
}

// zonePicks returns the routing counters of the zoned services by
// "service/class": the HTTP transport counts in the caller's stats, the
// gRPC balancer in the default runtime's.
func zonePicks(st, gst *envtag.Stats) map[string]envtag.Count {
	out := map[string]envtag.Count{}
	for _, c := range st.Snapshot() {
		if c.Service == zoneHTTPService {
			out[c.Service+"/"+c.Class] = c
		}
	}
	for _, c := range gst.Snapshot() {
		if c.Service == zoneGRPCService {
			out[c.Service+"/"+c.Class] = c
		}
	}
	return out
}

// countsDelta returns after minus before, sorted.
func countsDelta(before, after map[string]envtag.Count) []envtag.Count {
	var out []envtag.Count
	for k, c := range after {
		p := before[k]
		out = append(out, envtag.Count{Service: c.Service, Class: c.Class, Lane: c.Lane - p.Lane, Fallback: c.Fallback - p.Fallback,
			Trunk: c.Trunk - p.Trunk, Miss: c.Miss - p.Miss, SameZone: c.SameZone - p.SameZone, Spilled: c.Spilled - p.Spilled,
			Pinned: c.Pinned - p.Pinned, PinRefused: c.PinRefused - p.PinRefused})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Class < out[j].Class
	})
	return out
}

// summaryZones renders the zones section.
func (r *Report) summaryZones(w io.Writer) {
	z := r.Zones
	if z == nil {
		return
	}
	var pins []string
	for run, zone := range z.Pins {
		pins = append(pins, run+" -> "+zone)
	}
	sort.Strings(pins)
	fmt.Fprintf(w, "\nzones (caller in %s; pinned by reload: %s; %s over HTTP, %s over gRPC, two instances per zone):\n", z.Caller, strings.Join(pins, ", "), zoneHTTPService, zoneGRPCService)
	fmt.Fprintf(w, "  %-26s %-28s %-8s %5s %5s %5s  %s\n", "phase", "run", "want", "ok", "refus", "fail", "served by zone (instances' own counters)")
	for _, p := range z.Phases {
		run := p.Run
		if run == "" {
			run = "(production)"
		}
		var cells []string
		for _, svc := range zoneServices {
			var zs []string
			for _, zone := range []string{zoneA, zoneB} {
				if n := p.Served[svc][zone]; n != 0 {
					zs = append(zs, fmt.Sprintf("%s=%d", zone, n))
				}
			}
			if len(zs) == 0 {
				zs = []string{"-"}
			}
			cells = append(cells, svc+" "+strings.Join(zs, ","))
		}
		fmt.Fprintf(w, "  %-26s %-28s %-8s %5d %5d %5d  %s\n", p.Name, run, p.Want, p.Answered, p.Refused, p.Failed, strings.Join(cells, "; "))
	}
	fmt.Fprintf(w, "  routing counters over the slice, warm-up and settling included (same-zone/spilled, pinned/refused):")
	for _, c := range z.Picks {
		fmt.Fprintf(w, " %s[%s] %d/%d, %d/%d", c.Service, c.Class, c.SameZone, c.Spilled, c.Pinned, c.PinRefused)
	}
	fmt.Fprintln(w)
	for _, in := range z.Instances {
		state := ""
		if in.Stopped {
			state = " (stopped)"
		}
		fmt.Fprintf(w, "  instance %-20s %-7s production %5d  load-test %5d  (own counters, warm-up included)%s\n", in.Name, in.Zone, in.Production, in.LoadTest, state)
	}
}
