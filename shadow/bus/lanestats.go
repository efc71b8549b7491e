package bus

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// LaneCounters count what a queue-style consumer (RabbitMQ, NATS
// JetStream) did beyond handling: passing messages on to lanes, handing a
// left lane's backlog over, and handling redeliveries it did not ask for
// (where an at-least-once duplicate can arise). Use [NewLaneCounters];
// the methods are safe for concurrent use and do not allocate.
type LaneCounters struct {
	store                              string
	forwarded, handedOver, redelivered atomic.Int64
}

// LaneStats is a snapshot of [LaneCounters].
type LaneStats struct {
	// Forwarded: messages a trunk passed on to a live lane's queue
	// (RabbitMQ).
	Forwarded int64 `json:"forwarded"`
	// HandedOver: messages of a lane that left, handled by the trunk from
	// the lane's backlog.
	HandedOver int64 `json:"handedOver"`
	// Redelivered: messages handled on a redelivery the consumer did not
	// ask for (not after its own handler error): a crash, a lost
	// acknowledgement, or a message a stopping consumer handed back, so
	// it may have been handled before. Every at-least-once duplicate is
	// among them.
	Redelivered int64 `json:"redelivered"`
}

var (
	laneCountersMu  sync.Mutex
	allLaneCounters []*LaneCounters
	laneMetricsOnce sync.Once
)

// NewLaneCounters returns counters for the adapter store ("amqp",
// "nats"). They are also reported as the OpenTelemetry counter
// "shadowlane.bus.lane_deliveries" (attributes store and kind: forwarded,
// handed_over, redelivered) on the global meter provider, summed per
// store.
func NewLaneCounters(store string) *LaneCounters {
	c := &LaneCounters{store: store}
	laneCountersMu.Lock()
	allLaneCounters = append(allLaneCounters, c)
	laneCountersMu.Unlock()
	laneMetricsOnce.Do(registerLaneMetrics)
	return c
}

func registerLaneMetrics() {
	m := otel.GetMeterProvider().Meter("github.com/shadowlane/shadowlane/shadow/bus")
	ctr, err := m.Int64ObservableCounter("shadowlane.bus.lane_deliveries",
		metric.WithDescription("Queue consumer deliveries passed on to lanes, handed over from a left lane, and handled on a redelivery not asked for (where at-least-once duplicates arise), by store and kind."))
	if err != nil {
		return
	}
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		per := map[string]LaneStats{}
		laneCountersMu.Lock()
		for _, c := range allLaneCounters {
			s, t := c.Snapshot(), per[c.store]
			t.Forwarded += s.Forwarded
			t.HandedOver += s.HandedOver
			t.Redelivered += s.Redelivered
			per[c.store] = t
		}
		laneCountersMu.Unlock()
		for store, s := range per {
			for kind, n := range map[string]int64{"forwarded": s.Forwarded, "handed_over": s.HandedOver, "redelivered": s.Redelivered} {
				o.ObserveInt64(ctr, n, metric.WithAttributes(attribute.String("store", store), attribute.String("kind", kind)))
			}
		}
		return nil
	}, ctr)
}

// Forwarded counts a message passed on to a lane.
func (c *LaneCounters) Forwarded() { c.forwarded.Add(1) }

// HandedOver counts a message handled from a left lane's backlog.
func (c *LaneCounters) HandedOver() { c.handedOver.Add(1) }

// Redelivered counts a message handled on a redelivery the consumer did
// not ask for.
func (c *LaneCounters) Redelivered() { c.redelivered.Add(1) }

// Snapshot returns the counts so far.
func (c *LaneCounters) Snapshot() LaneStats {
	return LaneStats{Forwarded: c.forwarded.Load(), HandedOver: c.handedOver.Load(), Redelivered: c.redelivered.Load()}
}
