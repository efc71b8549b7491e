package bus

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Counters count what a consumer of one adapter did around commits and
// hand-overs: the places where a bus can only promise at least once, so
// that every duplicate it may deliver is counted where it arises. Use
// [NewCounters]; the methods are safe for concurrent use and do not
// allocate.
type Counters struct {
	store string

	handedOver         atomic.Int64
	floorSkipped       atomic.Int64
	uncommitted        atomic.Int64
	refusedUncommitted atomic.Int64
	startSkipped       atomic.Int64
	unpersisted        atomic.Int64
}

// Stats is a snapshot of [Counters].
type Stats struct {
	// HandedOver counts records of a removed lane's backlog the trunk
	// handled in a hand-over.
	HandedOver int64 `json:"handedOver"`
	// FloorSkipped counts records the trunk passed over because the lane
	// had handled them (below the lane group's committed offset), such as
	// a lane's records in a batch redelivered to the trunk after a crash.
	FloorSkipped int64 `json:"floorSkipped"`
	// Uncommitted counts records handled whose commit failed: the
	// documented at-least-once duplicates (the next consumer of the group
	// handles them again).
	Uncommitted int64 `json:"uncommitted"`
	// RefusedUncommitted counts refused records whose commit failed: each
	// may reach the refusal callback once more, from the next consumer.
	RefusedUncommitted int64 `json:"refusedUncommitted"`
	// StartSkipped counts records a new lane passed over in its start
	// window because the trunk had handled them before it saw the lane.
	StartSkipped int64 `json:"startSkipped"`
	// Unpersisted counts commits whose hand-over spans did not fit the
	// commit metadata (they then live in the trunk's memory only).
	Unpersisted int64 `json:"unpersisted"`
}

var (
	countersMu  sync.Mutex
	allCounters []*Counters
	metricsOnce sync.Once
)

// NewCounters returns counters for the adapter store ("kafka", ...). They
// are also reported as the OpenTelemetry counter
// "shadowlane.bus.deliveries" (attributes store and kind: handed_over,
// floor_skipped, uncommitted, refused_uncommitted, start_skipped,
// unpersisted), on the global meter provider, summed per store.
func NewCounters(store string) *Counters {
	c := &Counters{store: store}
	countersMu.Lock()
	allCounters = append(allCounters, c)
	countersMu.Unlock()
	metricsOnce.Do(registerMetrics)
	return c
}

func registerMetrics() {
	m := otel.GetMeterProvider().Meter("github.com/shadowlane/shadowlane/shadow/bus")
	ctr, err := m.Int64ObservableCounter("shadowlane.bus.deliveries",
		metric.WithDescription("Bus consumer deliveries around commits and lane hand-overs, by store and kind (at-least-once duplicates are counted as uncommitted and refused_uncommitted)."))
	if err != nil {
		return
	}
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		per := map[string]Stats{}
		countersMu.Lock()
		for _, c := range allCounters {
			s, t := c.Snapshot(), per[c.store]
			t.HandedOver += s.HandedOver
			t.FloorSkipped += s.FloorSkipped
			t.Uncommitted += s.Uncommitted
			t.RefusedUncommitted += s.RefusedUncommitted
			t.StartSkipped += s.StartSkipped
			t.Unpersisted += s.Unpersisted
			per[c.store] = t
		}
		countersMu.Unlock()
		for store, s := range per {
			for _, kv := range []struct {
				kind string
				n    int64
			}{{"handed_over", s.HandedOver}, {"floor_skipped", s.FloorSkipped}, {"uncommitted", s.Uncommitted},
				{"refused_uncommitted", s.RefusedUncommitted}, {"start_skipped", s.StartSkipped}, {"unpersisted", s.Unpersisted}} {
				o.ObserveInt64(ctr, kv.n, metric.WithAttributes(attribute.String("store", store), attribute.String("kind", kv.kind)))
			}
		}
		return nil
	}, ctr)
}

// HandedOver counts n records handled in a hand-over.
func (c *Counters) HandedOver(n int) { c.handedOver.Add(int64(n)) }

// FloorSkipped counts n records passed over below a lane's floor.
func (c *Counters) FloorSkipped(n int) { c.floorSkipped.Add(int64(n)) }

// Uncommitted counts a failed commit of handled handled records and
// refused refused ones.
func (c *Counters) Uncommitted(handled, refused int) {
	c.uncommitted.Add(int64(handled))
	c.refusedUncommitted.Add(int64(refused))
}

// StartSkipped counts n records a new lane passed over (the trunk's).
func (c *Counters) StartSkipped(n int) { c.startSkipped.Add(int64(n)) }

// Unpersisted counts a commit whose spans did not fit its metadata.
func (c *Counters) Unpersisted() { c.unpersisted.Add(1) }

// Snapshot returns the counts so far.
func (c *Counters) Snapshot() Stats {
	return Stats{
		HandedOver: c.handedOver.Load(), FloorSkipped: c.floorSkipped.Load(), Uncommitted: c.uncommitted.Load(),
		RefusedUncommitted: c.refusedUncommitted.Load(), StartSkipped: c.startSkipped.Load(), Unpersisted: c.unpersisted.Load(),
	}
}
