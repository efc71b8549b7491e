package messaging

import (
	"context"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// BenchmarkConsume is the per-message cost of the consume side (issue 20's
// consume rule in package shadow/bus) for each bus, without a broker: one
// received message (two ordinary headers; the marked one adds the run
// header and comes from the shadow target) goes from the consume loop to
// the handler.
//
//   - bare: the handler called with the consumer's context, what a consume
//     loop without shadowlane does per message.
//   - unmarked, marked: what the adapter's consume loop runs per message
//     before and around the handler on a trunk consumer without lanes: the
//     adapter's header decoding (its unexported decode, repeated here
//     line for line), the consume decision (bus.Rules.ConsumeRecord with
//     the trunk's lane steps for slkafka, bus.Rules.Consume for slamqp and
//     core NATS), the handler's context (propagation.With for marked
//     work; production work gets a context the loop built once), the run
//     evidence of a handled marked message (shadowlane.BusEvidence.Entry)
//     and, for slkafka, the in-place retry (bus.Retry.After, called only
//     when the handler failed). Keep these in step with the adapters: they
//     run these steps in unexported functions (slkafka Consumer.runClient
//     and handle, slamqp sub.run, deliver and handle, slnats msgHandler);
//     their public wrappers (Consumer.Run, Channel.Consume,
//     Conn.Subscribe) need a broker. Not included: the broker's acks and
//     commits, slkafka's commit batch, slamqp's probe look-up (its whole
//     per-delivery path is adapters/slamqp's BenchmarkDeliver),
//     JetStream's settled-sequence bookkeeping (its decision is the same
//     decode + Consume as core NATS).
func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	b.Run("kafka", func(b *testing.B) {
		s, err := slkafka.New(slkafka.WithShadowTopics("orders"))
		if err != nil {
			b.Fatal(err)
		}
		var n int
		h := slkafka.Handler(func(_ context.Context, r *kgo.Record) error { n += len(r.Value); return nil })
		c := &kafkaLoop{rules: s.Rules(), ev: shadowlane.NewBusEvidence(nil, slkafka.Store), group: "billing", h: h,
			steps: &bus.LaneSteps{Skips: bus.NewSkips(), Counts: bus.NewCounters(slkafka.Store)},
			prod:  propagation.With(ctx, propagation.Mark{})}
		hs := []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}, {Key: "content-type", Value: []byte("application/json")}}
		plain := &kgo.Record{Topic: "orders", Value: value, Headers: hs}
		marked := &kgo.Record{Topic: "orders_shadow", Value: value, Headers: append(hs[:2:2], kgo.RecordHeader{Key: bus.HeaderRun, Value: []byte("run-1")})}
		c.check(b, ctx, plain, "")
		c.check(b, ctx, marked, "run-1")
		b.Run("bare", func(b *testing.B) { loop(b, func() { h(ctx, plain) }) })
		b.Run("unmarked", func(b *testing.B) { loop(b, func() { c.consume(ctx, plain) }) })
		b.Run("marked", func(b *testing.B) { loop(b, func() { c.consume(ctx, marked) }) })
	})
	b.Run("amqp", func(b *testing.B) {
		s, err := slamqp.New(slamqp.WithShadowQueues("orders"))
		if err != nil {
			b.Fatal(err)
		}
		var n int
		h := slamqp.Handler(func(_ context.Context, d *amqp091.Delivery) error { n += len(d.Body); return nil })
		rq, _ := s.Rules()
		c := &amqpLoop{rules: rq, ev: shadowlane.NewBusEvidence(nil, slamqp.Store), h: h, prod: propagation.With(ctx, propagation.Mark{})}
		plain := &amqp091.Delivery{Body: value, Headers: amqp091.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "content-type": "application/json"}}
		marked := &amqp091.Delivery{Body: value, Headers: amqp091.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "content-type": "application/json", bus.HeaderRun: "run-1"}}
		c.check(b, ctx, "orders", "orders", plain, "")
		c.check(b, ctx, "orders", "orders_shadow", marked, "run-1")
		b.Run("bare", func(b *testing.B) { loop(b, func() { h(ctx, plain) }) })
		b.Run("unmarked", func(b *testing.B) { loop(b, func() { c.consume(ctx, "orders", "orders", plain) }) })
		b.Run("marked", func(b *testing.B) { loop(b, func() { c.consume(ctx, "orders", "orders_shadow", marked) }) })
	})
	b.Run("nats", func(b *testing.B) {
		s, err := slnats.New(slnats.WithShadowSubjects("orders.>"))
		if err != nil {
			b.Fatal(err)
		}
		var n int
		h := slnats.Handler(func(_ context.Context, m *natsgo.Msg) { n += len(m.Data) })
		c := &natsLoop{rules: s.Rules(), ev: shadowlane.NewBusEvidence(nil, slnats.Store), lanesKey: "billing", h: h,
			prod: propagation.With(context.Background(), propagation.Mark{})}
		plain := &natsgo.Msg{Subject: "orders.created", Data: value, Header: natsgo.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "Content-Type": {"application/json"}}}
		st, _ := s.ShadowSubject("orders.created")
		marked := &natsgo.Msg{Subject: st, Data: value, Header: natsgo.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "Content-Type": {"application/json"}, bus.HeaderRun: {"run-1"}}}
		c.check(b, plain, false, "")
		c.check(b, marked, true, "run-1")
		bg := context.Background() // core NATS handlers get a background context
		b.Run("bare", func(b *testing.B) { loop(b, func() { h(bg, plain) }) })
		b.Run("unmarked", func(b *testing.B) { loop(b, func() { c.consume(plain, false) }) })
		b.Run("marked", func(b *testing.B) { loop(b, func() { c.consume(marked, true) }) })
	})
}

func loop(b *testing.B, op func()) {
	b.ReportAllocs()
	measure.GrowStack(8)
	for b.Loop() {
		measure.Op(op)
	}
}

// kafkaLoop is slkafka's per-record steps on a trunk consumer without
// lanes: decode, Rules.ConsumeRecord with the trunk's lane steps (its
// hand-over ledger), then Consumer.handle.
type kafkaLoop struct {
	rules *bus.Rules
	ev    shadowlane.BusEvidence
	group string
	steps *bus.LaneSteps
	retry bus.Retry
	h     slkafka.Handler
	prod  context.Context // the loop's context carrying the zero mark, built once
	last  bus.Decision
}

// kafkaDecode is slkafka's decode.
func kafkaDecode(r *kgo.Record) bus.Decoder {
	var d bus.Decoder
	for _, h := range r.Headers {
		if f := bus.FieldOf(h.Key); f != bus.NoField {
			d.Add(f, string(h.Value), true)
		}
	}
	return d
}

func (c *kafkaLoop) consume(ctx context.Context, r *kgo.Record) error {
	d := kafkaDecode(r)
	dec, err := c.rules.ConsumeRecord(ctx, c.group, bus.Partition{Topic: r.Topic, Partition: r.Partition}, r.Offset, &d, c.steps)
	if err != nil {
		return err
	}
	c.last = dec
	if dec.Action != bus.Handle {
		return nil
	}
	mctx := c.prod
	if !dec.Mark.IsZero() {
		mctx = propagation.With(ctx, dec.Mark)
	}
	if dec.Mark.Run != "" {
		c.ev.Entry(mctx, c.rules.Production(r.Topic), c.group)
	}
	var exhausted bool
	if err = c.h(mctx, r); err != nil {
		exhausted, err = c.retry.After(ctx, err, func() error { return c.h(mctx, r) })
	}
	if bus.Final(ctx, exhausted, err) {
		c.ev.HandlerFailed(mctx)
	}
	return err
}

func (c *kafkaLoop) check(b *testing.B, ctx context.Context, r *kgo.Record, run string) {
	if err := c.consume(ctx, r); err != nil || c.last.Action != bus.Handle || c.last.Mark.Run != run {
		b.Fatalf("%s: decision %v %+v, err %v; want handle under run %q", r.Topic, c.last.Action, c.last.Mark, err, run)
	}
}

// amqpLoop is slamqp's per-delivery steps on a trunk consumer without
// lanes: Shadow.decide (decode, Rules.Consume), then sub.handle up to the
// handler's return.
type amqpLoop struct {
	rules *bus.Rules
	ev    shadowlane.BusEvidence
	h     slamqp.Handler
	prod  context.Context // the loop's context carrying the zero mark, built once
	last  bus.Decision
}

// amqpDecode is slamqp's decode.
func amqpDecode(t amqp091.Table) bus.Decoder {
	var d bus.Decoder
	for k, v := range t {
		f := bus.FieldOf(k)
		if f == bus.NoField {
			continue
		}
		switch x := v.(type) {
		case string:
			d.Add(f, x, true)
		case []byte:
			d.Add(f, string(x), true)
		default:
			d.Add(f, "", false)
		}
	}
	return d
}

func (c *amqpLoop) consume(ctx context.Context, prod, from string, d *amqp091.Delivery) error {
	dd := amqpDecode(d.Headers)
	dec := c.rules.Consume(prod, from, &dd)
	c.last = dec
	if dec.Action != bus.Handle {
		return nil
	}
	mctx := c.prod
	if !dec.Mark.IsZero() {
		mctx = propagation.With(ctx, dec.Mark)
	}
	if !d.Redelivered && dec.Mark.Run != "" {
		c.ev.Entry(mctx, prod, from)
	}
	return c.h(mctx, d)
}

func (c *amqpLoop) check(b *testing.B, ctx context.Context, prod, from string, d *amqp091.Delivery, run string) {
	if err := c.consume(ctx, prod, from, d); err != nil || c.last.Action != bus.Handle || c.last.Mark.Run != run {
		b.Fatalf("%s: decision %v %+v, err %v; want handle under run %q", from, c.last.Action, c.last.Mark, err, run)
	}
}

// natsLoop is slnats's core-NATS message handler (msgHandler) on a trunk
// subscriber without lanes: the shadow-subject guard of the production
// subscription, decode, Rules.Consume, then the handler.
type natsLoop struct {
	rules    *bus.Rules
	ev       shadowlane.BusEvidence
	lanesKey string
	h        slnats.Handler
	prod     context.Context // the handler's context for production work, built once
	last     bus.Decision
}

// natsDecode is slnats's decode.
func natsDecode(h natsgo.Header) bus.Decoder {
	var d bus.Decoder
	for k, vs := range h {
		f := bus.FieldOf(k)
		if f == bus.NoField {
			continue
		}
		if len(vs) == 0 {
			d.Malformed(f)
		}
		for _, v := range vs {
			d.Add(f, v, true)
		}
	}
	return d
}

// natsTarget is slnats's metricTarget: the first token of the production
// subject.
func natsTarget(r *bus.Rules, subj string) string {
	p := r.Production(subj)
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			return p[:i]
		}
	}
	return p
}

func (c *natsLoop) consume(msg *natsgo.Msg, shadowSide bool) {
	if !shadowSide && c.rules.IsShadow(msg.Subject) {
		c.last = bus.Decision{Action: bus.Refuse}
		return
	}
	d := natsDecode(msg.Header)
	dec := c.rules.Consume(c.lanesKey, msg.Subject, &d)
	c.last = dec
	if dec.Action == bus.Handle {
		mctx := c.prod
		if !dec.Mark.IsZero() {
			mctx = propagation.With(context.Background(), dec.Mark)
		}
		if dec.Mark.Run != "" {
			c.ev.Entry(mctx, natsTarget(c.rules, msg.Subject), c.lanesKey)
		}
		c.h(mctx, msg)
	}
}

func (c *natsLoop) check(b *testing.B, msg *natsgo.Msg, shadowSide bool, run string) {
	if c.consume(msg, shadowSide); c.last.Action != bus.Handle || c.last.Mark.Run != run {
		b.Fatalf("%s: decision %v %+v; want handle under run %q", msg.Subject, c.last.Action, c.last.Mark, run)
	}
}
