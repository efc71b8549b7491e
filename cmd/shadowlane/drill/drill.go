package drill

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

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

// withDefaults fills the options left zero.
func (o Options) withDefaults() Options {
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
	return o
}

// Run runs the drill and returns its report; err is for setup failures only
// (violations are in the report).
//
// The drill is filed by concept: topology.go starts the shop, phases.go
// sends the traffic, invariants.go (with stores.go, buses.go, lanes.go,
// timed.go, faults.go, deadline.go, limits.go) checks it, report.go and
// html.go render the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
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

	d := newDrillRun(ctx, o, t, st, started) // phases.go
	d.timedPhase(ctx)
	if err := d.fixedPhases(ctx); err != nil {
		return nil, err
	}
	d.migrationScenario(ctx, tmp) // migration.go: order events move NATS -> Kafka
	// ---- invariants (invariants.go) ----
	d.checkStores(ctx, lanes)
	rep := d.rep
	rep.Blocks = blocks(shadow0, shadow.Snapshot(), t, t.rec)
	d.markInvariants()
	pay := d.expectedPayments()
	d.routingInvariants()
	d.pickInvariants()
	d.edgeInvariants(pay)
	if err := d.zonesPhase(ctx); err != nil { // zones.go: the two-zone slice
		return nil, err
	}
	if err := limitsPhases(ctx, t, rep, d.client, o, d.run, d.tok, d.add); err != nil { // limits.go; runs last
		return nil, err
	}
	rep.OK = true
	for _, inv := range rep.Invariants {
		rep.OK = rep.OK && inv.OK
	}
	rep.DurationMS = time.Since(started).Milliseconds()
	return rep, nil
}
