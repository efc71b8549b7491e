package shadowlane

import (
	"context"
	"errors"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// BusEvidence is a message adapter's share of a load-test run's evidence
// ([Runtime.RunStatus]), one rule for every bus: a marked message handed
// to a handler is an entry "<store>:<target>" whose route is the consumer
// (group, queue, subject or durable name); a handler's final failure on a
// marked message is an error "<store> handler"; a failed publish of
// marked work an error "<store> publish" (refusals, [*shadow.Error], are
// decisions, not errors). Production work costs nothing. Use
// [NewBusEvidence]; a BusEvidence is safe for concurrent use.
type BusEvidence struct {
	rt                      *Runtime
	store, handler, publish string
}

// NewBusEvidence returns the evidence of the adapter store ("kafka",
// "amqp", "nats") counted in rt (nil: the default Runtime at each count).
func NewBusEvidence(rt *Runtime, store string) BusEvidence {
	return BusEvidence{rt: rt, store: store, handler: store + " handler", publish: store + " publish"}
}

// Entry counts the marked message ctx carries handed to its handler:
// entry "<store>:<target>" (target: the production topic, queue or
// subject), route route. Nothing for production work.
func (e BusEvidence) Entry(ctx context.Context, target, route string) {
	if propagation.FromContext(ctx).Run != "" {
		OrDefault(e.rt).CountEntry(ctx, e.store+":"+target, route)
	}
}

// HandlerFailed counts a handler's final failure (its deliveries or
// attempts are spent) on the marked message ctx carries.
func (e BusEvidence) HandlerFailed(ctx context.Context) {
	OrDefault(e.rt).RunError(ctx, e.handler)
}

// PublishFailed counts a publish of the marked work ctx carries that
// failed with err; nil and refusals ([*shadow.Error]) are not counted.
func (e BusEvidence) PublishFailed(ctx context.Context, err error) {
	if err != nil && propagation.FromContext(ctx).Run != "" && !refusal(err) {
		OrDefault(e.rt).RunError(ctx, e.publish)
	}
}

// refusal reports whether err is a rule's refusal, a decision.
func refusal(err error) bool {
	var se *shadow.Error
	return errors.As(err, &se)
}

// BusObserver is everything a bus adapter's Shadow counts: what its
// consumers did around commits, hand-overs and pass-ons ([bus.Counters],
// the shadowlane.bus.deliveries metric, the adapter's Stats) and the
// per-run evidence ([BusEvidence]).
type BusObserver struct {
	*bus.Counters
	BusEvidence
}

// NewBusObserver returns the observer of the adapter store ("kafka",
// "amqp", "nats"), with its evidence counted in rt (nil: the default
// Runtime at each count).
func NewBusObserver(rt *Runtime, store string) BusObserver {
	return BusObserver{Counters: bus.NewCounters(store), BusEvidence: NewBusEvidence(rt, store)}
}

// BindBus makes the rules built from c follow rt (nil: the default
// Runtime, looked up at each call), as every bus adapter's do: load-test
// traffic is on or off by rt's kill switch ([Runtime.LoadTestEnabled]),
// and the rules' decisions are counted in rt's [Runtime.Decisions].
func BindBus(rt *Runtime, c *bus.Config) {
	c.LoadTest = func() bool { on, _ := OrDefault(rt).LoadTestEnabled(); return on }
	c.Decisions = func() *shadow.Series { return OrDefault(rt).Decisions() }
}
