package drill

// The fault drill (Options.Faults, shadowlane drill --faults): a loopback
// TCP fault proxy sits in front of every store and broker the shop reaches
// over TCP (SQL unless embedded SQLite, Redis, NATS, RabbitMQ). The shop's
// clients and consumers connect through it; the drill's plain read-back
// clients connect directly, so the verification never depends on a
// fault. During the timed phase the drill, on a schedule it prints first,
// injects on each proxy in turn:
//
//   - kill: every open connection is reset (RST), and new connections are
//     reset on accept until the fault ends;
//   - blackhole: connections are accepted but nothing is forwarded either
//     way until the fault ends (then forwarding resumes, as after a
//     network partition heals);
//   - slow: every chunk forwarded either way waits slowDelay first.
//
// Kafka is proxied when the drill runs against real brokers (--kafka):
// its brokers advertise their own addresses in metadata, so its proxies
// read the Kafka protocol and rewrite them (kafkaproxy.go). The embedded
// kfake runs in process and is not proxied.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Fault kinds.
const (
	FaultKill      = "kill"
	FaultBlackhole = "blackhole"
	FaultSlow      = "slow"
)

// slowDelay is what a slow proxy adds to every chunk, each way.
const slowDelay = 25 * time.Millisecond

// Fault is one injected fault: which proxy, what, and when (milliseconds
// from the start of the drill's traffic, the traffic chart's origin).
type Fault struct {
	Target  string `json:"target"` // sql, redis, nats, amqp, kafka (kafka2, ... per further broker)
	Kind    string `json:"kind"`   // kill, blackhole, slow
	StartMS int64  `json:"startMs"`
	EndMS   int64  `json:"endMs"`
	// Conns is the number of connections the fault hit: reset (kill), held
	// (blackhole) or slowed.
	Conns int `json:"conns"`
}

// faultProxy forwards loopback TCP connections to one upstream and
// injects faults on demand.
type faultProxy struct {
	name, upstream string
	ln             net.Listener

	mu    sync.Mutex
	mode  string // "" (healthy) or a fault kind
	heal  chan struct{}
	conns map[*proxied]struct{}
	hit   int // connections the current fault hit
	done  bool
	wg    sync.WaitGroup
	kafka *kafkaProxies // set: a Kafka broker's proxy, which rewrites broker addresses (kafkaproxy.go)
}

type proxied struct{ client, server net.Conn }

func newFaultProxy(name, upstream string) (*faultProxy, error) {
	return startFaultProxy(name, upstream, nil)
}

// startFaultProxy starts a fault proxy; with k it is a Kafka broker's
// (kafkaproxy.go).
func startFaultProxy(name, upstream string, k *kafkaProxies) (*faultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{name: name, upstream: upstream, ln: ln, conns: map[*proxied]struct{}{}, heal: make(chan struct{}), kafka: k}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // close with RST: "connection reset by peer"
	}
	c.Close()
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.mode == FaultKill || p.done {
			p.hit++
			p.mu.Unlock()
			reset(c)
			continue
		}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *faultProxy) serve(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		reset(c)
		return
	}
	pc := &proxied{client: c, server: s}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		reset(c)
		s.Close()
		return
	}
	p.conns[pc] = struct{}{}
	if p.mode != "" {
		p.hit++
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	if p.kafka != nil {
		kc := &kafkaConn{k: p.kafka, inflight: map[int32][2]int16{}}
		go func() { defer wg.Done(); p.pipeFrames(s, c, kc.request) }()
		go func() { defer wg.Done(); p.pipeFrames(c, s, kc.response) }()
	} else {
		go func() { defer wg.Done(); p.pipe(s, c) }()
		go func() { defer wg.Done(); p.pipe(c, s) }()
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, obeying the current fault before
// each write. Either side failing closes both.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			return
		}
	}
}

// gate waits out a blackhole, sleeps for a slow proxy and reports whether
// the chunk may be forwarded.
func (p *faultProxy) gate() bool {
	for {
		p.mu.Lock()
		mode, heal, done := p.mode, p.heal, p.done
		p.mu.Unlock()
		switch {
		case done:
			return false
		case mode == FaultBlackhole:
			<-heal
		case mode == FaultSlow:
			time.Sleep(slowDelay)
			return true
		default:
			return true
		}
	}
}

// inject starts a fault; it returns the connections it hit at once.
func (p *faultProxy) inject(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.hit = kind, 0
	switch kind {
	case FaultKill:
		for pc := range p.conns {
			reset(pc.client)
			reset(pc.server)
			p.hit++
		}
	case FaultBlackhole, FaultSlow:
		p.hit = len(p.conns)
	}
}

// heal ends the current fault and returns the connections it hit.
func (p *faultProxy) healAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = ""
	close(p.heal)
	p.heal = make(chan struct{})
	return p.hit
}

func (p *faultProxy) close() {
	p.mu.Lock()
	p.done = true
	close(p.heal)
	p.heal = make(chan struct{})
	for pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// faultPlan is the schedule: every proxy gets every kind of fault once,
// one at a time, in slots over the timed phase (the first tenth stays
// healthy, each slot is half fault, half healing).
type faultPlan struct {
	proxies []*faultProxy
	steps   []Fault // planned (StartMS/EndMS from the start of the timed phase)
}

func planFaults(proxies []*faultProxy, d time.Duration) faultPlan {
	pl := faultPlan{proxies: proxies}
	n := 3 * len(proxies)
	if n == 0 {
		return pl
	}
	lead := d / 10
	slot := (d - lead) / time.Duration(n)
	i := 0
	for _, kind := range []string{FaultKill, FaultBlackhole, FaultSlow} {
		for _, p := range proxies {
			start := lead + time.Duration(i)*slot
			pl.steps = append(pl.steps, Fault{Target: p.name, Kind: kind, StartMS: start.Milliseconds(), EndMS: (start + slot/2).Milliseconds()})
			i++
		}
	}
	return pl
}

// print writes the schedule for people.
func (pl faultPlan) print(w io.Writer) {
	if w == nil || len(pl.steps) == 0 {
		return
	}
	var names []string
	for _, p := range pl.proxies {
		names = append(names, fmt.Sprintf("%s %s -> %s", p.name, p.Addr(), p.upstream))
	}
	kafka := " (kafka not proxied: in process)"
	for _, p := range pl.proxies {
		if p.kafka != nil {
			kafka = ""
		}
	}
	fmt.Fprintf(w, "fault proxies: %s%s\n", strings.Join(names, ", "), kafka)
	fmt.Fprintf(w, "fault schedule (from the start of the timed phase):\n")
	for _, f := range pl.steps {
		fmt.Fprintf(w, "  %6.1fs - %6.1fs  %-9s %s\n", float64(f.StartMS)/1000, float64(f.EndMS)/1000, f.Kind, f.Target)
	}
}

// run injects the schedule from start (the timed phase's start) until
// done or ctx ends, healing whatever is active on return; origin is the
// traffic chart's origin. It returns the faults as injected.
func (pl faultPlan) run(ctx context.Context, start, origin time.Time) []Fault {
	var out []Fault
	byName := map[string]*faultProxy{}
	for _, p := range pl.proxies {
		byName[p.name] = p
	}
	wait := func(at time.Time) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Until(at)):
			return true
		}
	}
	for _, f := range pl.steps {
		if !wait(start.Add(time.Duration(f.StartMS) * time.Millisecond)) {
			break
		}
		p := byName[f.Target]
		p.inject(f.Kind)
		got := Fault{Target: f.Target, Kind: f.Kind, StartMS: time.Since(origin).Milliseconds()}
		ok := wait(start.Add(time.Duration(f.EndMS) * time.Millisecond))
		got.Conns = p.healAll()
		got.EndMS = time.Since(origin).Milliseconds()
		out = append(out, got)
		if !ok {
			break
		}
	}
	return out
}

// faultInvariants: every planned fault was injected and healed, and the
// report says what the faults did to the shop.
func faultInvariants(rep *Report, plan faultPlan, st *stores, add func(string, int, int, string)) {
	var names []string
	for _, p := range st.proxies {
		names = append(names, p.name)
	}
	hit := 0
	for _, f := range rep.Faults {
		hit += f.Conns
	}
	add(fmt.Sprintf("faults: injected and healed as scheduled (kill, blackhole, slow on each of %s)", strings.Join(names, ", ")), len(plan.steps), len(rep.Faults), "")
	add("faults: proxies in front of the shop's stores (at least one)", 1, oneIf(len(st.proxies) > 0), "")
	rep.Meta["faults"] = fmt.Sprintf("%d faults on %s, %d connections hit; consumer retries %v; RabbitMQ redials %d",
		len(rep.Faults), strings.Join(names, ", "), hit, st.retryCounts(), st.bus.redials.Load())
}
