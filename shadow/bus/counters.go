package bus

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Counters count what a consumer of one adapter did beyond handling, at
// the places where a bus can only promise at least once, so that every
// duplicate it may deliver is counted where it arises: commits and
// hand-overs (Kafka, sarama), passing messages on to lanes and handling
// redeliveries not asked for (RabbitMQ, NATS JetStream). Each adapter
// counts the kinds its bus has; the others stay zero. Use [NewCounters];
// the methods are safe for concurrent use and do not allocate.
type Counters struct {
	store string
	n     [kinds]atomic.Int64
}

// The kinds, in [Stats] field order; kindNames are their metric names.
const (
	kHandedOver = iota
	kFloorSkipped
	kUncommitted
	kRefusedUncommitted
	kStartSkipped
	kUnpersisted
	kForwarded
	kRedelivered
	kinds
)

var kindNames = [kinds]string{"handed_over", "floor_skipped", "uncommitted", "refused_uncommitted",
	"start_skipped", "unpersisted", "forwarded", "redelivered"}

// Stats is a snapshot of [Counters].
type Stats struct {
	// HandedOver counts records of a removed (left) lane's backlog the
	// trunk handled in a hand-over.
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
	// Forwarded counts messages a trunk passed on to a live lane's queue
	// (RabbitMQ).
	Forwarded int64 `json:"forwarded"`
	// Redelivered counts messages handled on a redelivery the consumer did
	// not ask for (not after its own handler error): a crash, a lost
	// acknowledgement, or a message a stopping consumer handed back, so it
	// may have been handled before. Every at-least-once duplicate of a
	// queue-style bus is among them.
	Redelivered int64 `json:"redelivered"`
}

func (s *Stats) add(n *[kinds]int64) {
	s.HandedOver += n[kHandedOver]
	s.FloorSkipped += n[kFloorSkipped]
	s.Uncommitted += n[kUncommitted]
	s.RefusedUncommitted += n[kRefusedUncommitted]
	s.StartSkipped += n[kStartSkipped]
	s.Unpersisted += n[kUnpersisted]
	s.Forwarded += n[kForwarded]
	s.Redelivered += n[kRedelivered]
}

var (
	countersMu  sync.Mutex
	allCounters []*Counters
	metricsOnce sync.Once
)

// NewCounters returns counters for the adapter store ("kafka", "amqp",
// ...). They are also reported as the OpenTelemetry counter
// "shadowlane.bus.deliveries" (attributes store and kind: handed_over,
// floor_skipped, uncommitted, refused_uncommitted, start_skipped,
// unpersisted, forwarded, redelivered; a kind is reported for a store
// once it counted one) on the global meter provider, summed per store.
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
		metric.WithDescription("Bus consumer deliveries around commits, lane hand-overs and pass-ons, by store and kind (at-least-once duplicates are counted as uncommitted, refused_uncommitted and redelivered)."))
	if err != nil {
		return
	}
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		per := map[string]*[kinds]int64{}
		countersMu.Lock()
		for _, c := range allCounters {
			t := per[c.store]
			if t == nil {
				t = new([kinds]int64)
				per[c.store] = t
			}
			for k := range c.n {
				t[k] += c.n[k].Load()
			}
		}
		countersMu.Unlock()
		for store, t := range per {
			for k, n := range t {
				if n != 0 {
					o.ObserveInt64(ctr, n, metric.WithAttributes(attribute.String("store", store), attribute.String("kind", kindNames[k])))
				}
			}
		}
		return nil
	}, ctr)
}

// HandedOver counts n records handled in a hand-over.
func (c *Counters) HandedOver(n int) { c.n[kHandedOver].Add(int64(n)) }

// FloorSkipped counts n records passed over below a lane's floor.
func (c *Counters) FloorSkipped(n int) { c.n[kFloorSkipped].Add(int64(n)) }

// Uncommitted counts a failed commit of handled handled records and
// refused refused ones.
func (c *Counters) Uncommitted(handled, refused int) {
	c.n[kUncommitted].Add(int64(handled))
	c.n[kRefusedUncommitted].Add(int64(refused))
}

// StartSkipped counts n records a new lane passed over (the trunk's).
func (c *Counters) StartSkipped(n int) { c.n[kStartSkipped].Add(int64(n)) }

// Unpersisted counts a commit whose spans did not fit its metadata.
func (c *Counters) Unpersisted() { c.n[kUnpersisted].Add(1) }

// Forwarded counts a message passed on to a lane.
func (c *Counters) Forwarded() { c.n[kForwarded].Add(1) }

// Redelivered counts a message handled on a redelivery the consumer did
// not ask for.
func (c *Counters) Redelivered() { c.n[kRedelivered].Add(1) }

// Snapshot returns the counts so far.
func (c *Counters) Snapshot() Stats {
	var n [kinds]int64
	for k := range c.n {
		n[k] = c.n[k].Load()
	}
	var s Stats
	s.add(&n)
	return s
}
