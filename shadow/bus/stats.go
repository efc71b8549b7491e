package bus

import "sync/atomic"

// Counters count what a consumer did beyond handling: the lane hand-over
// and the deliveries that may be at-least-once duplicates. The zero value
// is ready; it is safe for concurrent use.
type Counters struct {
	forwarded, handedOver, redelivered atomic.Int64
}

// Stats is a snapshot of [Counters].
type Stats struct {
	// Forwarded: messages a trunk passed on to a live lane (RabbitMQ).
	Forwarded int64
	// HandedOver: messages of a lane that left, handled by the trunk from
	// the lane's backlog.
	HandedOver int64
	// Redelivered: messages handled on a redelivery that this consumer
	// did not ask for (not after its own handler error): a crash or a
	// lost acknowledgement, so the message may have been handled before.
	// Every at-least-once duplicate is among them.
	Redelivered int64
}

// Forwarded counts a message passed on to a lane.
func (c *Counters) Forwarded() { c.forwarded.Add(1) }

// HandedOver counts a message handled from a left lane's backlog.
func (c *Counters) HandedOver() { c.handedOver.Add(1) }

// Redelivered counts a message handled on a redelivery the consumer did
// not ask for.
func (c *Counters) Redelivered() { c.redelivered.Add(1) }

// Snapshot returns the counts so far.
func (c *Counters) Snapshot() Stats {
	return Stats{Forwarded: c.forwarded.Load(), HandedOver: c.handedOver.Load(), Redelivered: c.redelivered.Load()}
}
