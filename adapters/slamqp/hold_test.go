package slamqp_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// TestKillSwitchHoldSpendsNoDeliveries flaps the kill switch more times
// than a quorum queue's delivery limit while a consumer holds marked
// deliveries back. A quorum queue counts every return of a message
// (nack with requeue; on RabbitMQ 3.x also a cancel or channel close) and
// drops or dead-letters it past x-delivery-limit (RabbitMQ 4.x sets 20 by
// default); slamqp's own [slamqp.WithMaxDeliveries] reads the same
// x-delivery-count. A hold must spend neither: judged with a plain client,
// every message is handled exactly once, none is dead-lettered or
// refused, none is left in a queue, and none counts as a redelivery the
// consumer did not ask for.
//
// "delivery-limit": the shadow queue's x-delivery-limit is 2.
// "max-deliveries": the broker's limit is high, WithMaxDeliveries is 3 and
// the handler fails each message's first attempt once the flapping is
// over (one failure, well within 3 deliveries).
func TestKillSwitchHoldSpendsNoDeliveries(t *testing.T) {
	for _, mode := range []string{"delivery-limit", "max-deliveries"} {
		t.Run(mode, func(t *testing.T) { holdSpendsNoDeliveries(t, mode == "max-deliveries") })
	}
}

func holdSpendsNoDeliveries(t *testing.T, failFirst bool) {
	const (
		nMarked  = 12
		prodN    = 4
		prefetch = 4
		flips    = 6 // off and on again, more than either limit
	)
	limit, maxDeliveries := int32(2), slamqp.DefaultMaxDeliveries
	if failFirst {
		limit, maxDeliveries = 50, 3
	}
	conn := dial(t)
	p := "amqphold_" + uniq()
	q, dlx, dead := p+".work", p+".dlx", p+".dead"
	cleanup(t, conn, []string{q, q + "_shadow", dead, dead + "_shadow"}, []string{dlx, dlx + "_shadow"})
	rt := bustest.SwitchRuntime(t)
	var refused atomic.Int64
	s := newShadow(t, slamqp.WithShadowQueues(q, dead), slamqp.WithShadowExchanges(dlx), slamqp.WithRuntime(rt),
		slamqp.WithPrefetch(prefetch), slamqp.WithMaxDeliveries(maxDeliveries),
		slamqp.WithRefused(func(_ context.Context, d *amqp091.Delivery, err error) {
			refused.Add(1)
			t.Logf("refused %s: %v", d.Body, err)
		}))
	raw := channel(t, conn)
	quorum := amqp091.Table{"x-queue-type": "quorum", "x-delivery-limit": limit, "x-dead-letter-exchange": dlx}
	if err := s.Declare(raw, slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: dlx, Kind: "fanout", Durable: true}},
		Queues:    []slamqp.Queue{{Name: q, Durable: true, Args: quorum}, {Name: dead, Durable: true}},
		Bindings:  []slamqp.Binding{{Queue: dead, Exchange: dlx}},
	}); err != nil {
		t.Fatal(err)
	}

	pub := s.Channel(channel(t, conn))
	lt := propagation.With(context.Background(), propagation.Mark{Run: "amqphold-r1"})
	publishIDs(t, lt, pub, q, "lt-", nMarked)
	publishIDs(t, context.Background(), pub, q, "prod-", prodN)

	// The flapping: after each marked message it handles, the handler
	// turns load tests off (so the consumer's next marked delivery, already
	// sent within the prefetch, is held back); the driver turns them on
	// again a little later.
	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	var (
		mu       sync.Mutex
		offs     int
		failed   = map[string]bool{}
		offAgain = make(chan struct{}, flips)
	)
	h := func(ctx context.Context, d *amqp091.Delivery) error {
		id := string(d.Body)
		isLT := propagation.FromContext(ctx).Run != ""
		mu.Lock()
		flapping := offs < flips
		fail := failFirst && isLT && !flapping && !failed[id]
		if fail {
			failed[id] = true
		}
		mu.Unlock()
		if fail {
			return errors.New("first attempt fails")
		}
		sw.Handle(ctx, id)
		if isLT {
			mu.Lock()
			off := offs < flips
			if off {
				offs++
			}
			mu.Unlock()
			if off {
				sw.Flip(func() { rt.SetLoadTest(false, "amqphold test") })
				offAgain <- struct{}{}
			}
		}
		return nil
	}
	ctx, stop := consumeInBackground(t, s.Channel(channel(t, conn)), q, h)
	driver := make(chan struct{})
	go func() {
		defer close(driver)
		for range flips {
			select {
			case <-offAgain:
			case <-ctx.Done():
				return
			}
			time.Sleep(250 * time.Millisecond) // off: the consumer holds what it was sent
			sw.Flip(func() { rt.SetLoadTest(true, "") })
		}
	}()

	insp := channel(t, conn)
	deadLettered := func() int {
		st, err := insp.QueueDeclarePassive(dead+"_shadow", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Messages
	}
	// Every message is either handled or, when a hold spent its
	// deliveries, dead-lettered (or refused).
	bustest.Wait(t, 60*time.Second, func() bool {
		n, _ := sw.Count("")
		return n+deadLettered()+int(refused.Load()) >= nMarked+prodN
	}, func() string {
		n, _ := sw.Count("")
		return fmt.Sprintf("%d handled, %d dead-lettered, %d refused, want %d in all", n, deadLettered(), refused.Load(), nMarked+prodN)
	})
	<-driver
	time.Sleep(300 * time.Millisecond) // late deliveries, if any
	stop()

	mu.Lock()
	if offs != flips {
		t.Errorf("the switch went off %d times, want %d", offs, flips)
	}
	mu.Unlock()
	sw.Check(t, "none", 0, nMarked+prodN) // each handled exactly once, none while off
	if n := refused.Load(); n != 0 {
		t.Errorf("%d messages refused (deliveries exhausted), want 0", n)
	}
	for _, qn := range []string{dead + "_shadow", dead, q + "_shadow", q} {
		for _, d := range get(t, raw, qn) {
			t.Errorf("%s left in %s (x-delivery-count %v)", d.Body, qn, d.Headers["x-delivery-count"])
		}
	}
	if n := s.Stats().Redelivered; n != 0 {
		t.Errorf("%d messages handled as redeliveries not asked for, want 0 (a hold is not a crash)", n)
	}
}

// TestKillSwitchMaxHold: load tests stay off longer than WithMaxHold (a
// stand-in for RabbitMQ's consumer_timeout, which closes a channel whose
// deliveries stay unacknowledged too long, production consumers
// included). The consumer hands back what it held and holds nothing
// more: a plain client finds every marked message ready in the shadow
// queue, none handled, while production flows; once the switch is on,
// each is handled exactly once. With a prefetch, and without one (the
// hold then cancels the consumer at once).
func TestKillSwitchMaxHold(t *testing.T) {
	for _, prefetch := range []int{4, 0} {
		t.Run(fmt.Sprintf("prefetch-%d", prefetch), func(t *testing.T) { maxHold(t, prefetch) })
	}
}

func maxHold(t *testing.T, prefetch int) {
	const nMarked, prodN = 10, 6
	conn := dial(t)
	q := "amqphold_" + uniq() + ".work"
	cleanup(t, conn, []string{q, q + "_shadow"}, nil)
	rt := bustest.SwitchRuntime(t)
	s := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithRuntime(rt), slamqp.WithPrefetch(prefetch),
		slamqp.WithMaxHold(400*time.Millisecond))
	raw := channel(t, conn)
	if err := s.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	publish := func(ctx context.Context, prefix string, n int) {
		t.Helper()
		for i := range n {
			id := fmt.Sprintf("%s%02d", prefix, i)
			if err := pub.PublishWithContext(ctx, "", q, false, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	sw.Flip(func() { rt.SetLoadTest(false, "amqphold test") })
	_, stop := consumeInBackground(t, s.Channel(channel(t, conn)), q, func(ctx context.Context, d *amqp091.Delivery) error {
		sw.Handle(ctx, string(d.Body))
		return nil
	})

	publish(propagation.With(context.Background(), propagation.Mark{Run: "amqphold-r2"}), "lt-", nMarked)
	publish(context.Background(), "prod-a", prodN/2)
	sw.WaitFor(t, "prod-a", prodN/2)
	// Held, then handed back after WithMaxHold: all ready again.
	insp := channel(t, conn)
	ready := func() int {
		st, err := insp.QueueDeclarePassive(q+"_shadow", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Messages
	}
	bustest.Wait(t, 30*time.Second, func() bool { return ready() == nMarked }, func() string {
		return fmt.Sprintf("shadow queue holds %d ready messages while off, want %d (handed back after WithMaxHold)", ready(), nMarked)
	})
	publish(context.Background(), "prod-b", prodN/2)
	sw.WaitFor(t, "prod-b", prodN/2)
	time.Sleep(300 * time.Millisecond) // nothing is taken again while off
	if n := ready(); n != nMarked {
		t.Errorf("shadow queue holds %d ready messages while off after the hand-back, want %d", n, nMarked)
	}
	if n, _ := sw.Count("lt-"); n != 0 {
		t.Fatalf("%d marked messages handled while off", n)
	}
	sw.Flip(func() { rt.SetLoadTest(true, "") })
	sw.WaitFor(t, "lt-", nMarked)
	time.Sleep(300 * time.Millisecond) // late deliveries, if any
	stop()
	sw.Check(t, "none", 0, nMarked+prodN)
	for _, qn := range []string{q, q + "_shadow"} {
		for _, d := range get(t, raw, qn) {
			t.Errorf("%s left in %s", d.Body, qn)
		}
	}
}

func TestMaxHoldConfig(t *testing.T) {
	if _, err := slamqp.New(slamqp.WithMaxHold(-time.Second)); !errors.Is(err, slamqp.ErrConfig) {
		t.Errorf("WithMaxHold(-1s): %v, want ErrConfig", err)
	}
	newShadow(t, slamqp.WithMaxHold(0)) // hand back at once
}

// TestKillSwitchStopWhileHolding: a plain client sees the hold (the
// prefetch's worth of marked messages unacknowledged, the rest ready, none
// handled), then the consumer stops while its channel stays open: every
// held message is back in the shadow queue, none lost, none handled, and
// production was handled all along.
func TestKillSwitchStopWhileHolding(t *testing.T) {
	const nMarked, prodN, prefetch = 10, 4, 4
	conn := dial(t)
	q := "amqphold_" + uniq() + ".work"
	cleanup(t, conn, []string{q, q + "_shadow"}, nil)
	rt := bustest.SwitchRuntime(t)
	s := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithRuntime(rt), slamqp.WithPrefetch(prefetch))
	raw := channel(t, conn)
	if err := s.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	sw.Flip(func() { rt.SetLoadTest(false, "amqphold test") })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	consumerCh := channel(t, conn) // stays open after the stop
	go func() {
		done <- s.Channel(consumerCh).Consume(ctx, q, func(ctx context.Context, d *amqp091.Delivery) error {
			sw.Handle(ctx, string(d.Body))
			return nil
		})
	}()
	lt := propagation.With(context.Background(), propagation.Mark{Run: "amqphold-r3"})
	publishIDs(t, lt, pub, q, "lt-", nMarked)
	publishIDs(t, context.Background(), pub, q, "prod-", prodN)
	insp := channel(t, conn)
	ready := func() int {
		st, err := insp.QueueDeclarePassive(q+"_shadow", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st.Messages
	}
	sw.WaitFor(t, "prod-", prodN)
	bustest.Wait(t, 30*time.Second, func() bool { return ready() == nMarked-prefetch }, func() string {
		return fmt.Sprintf("shadow queue holds %d ready messages, want %d (%d held unacknowledged)", ready(), nMarked-prefetch, prefetch)
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Consume returned %v on a stop, want nil", err)
	}
	bustest.Wait(t, 10*time.Second, func() bool { return ready() == nMarked }, func() string {
		return fmt.Sprintf("after the stop the shadow queue holds %d ready messages, want %d", ready(), nMarked)
	})
	sw.Check(t, "none", 0, prodN) // no marked message handled
	got := map[string]int{}
	for _, d := range get(t, raw, q+"_shadow") {
		got[string(d.Body)]++
	}
	for i := range nMarked {
		if id := fmt.Sprintf("lt-%02d", i); got[id] != 1 {
			t.Errorf("%s found %d times in the shadow queue, want 1", id, got[id])
		}
	}
}

// publishIDs publishes n messages to queue q through pub under ctx, each
// with the message id and body prefix+"00", prefix+"01"...
func publishIDs(t *testing.T, ctx context.Context, pub *slamqp.Channel, q, prefix string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s%02d", prefix, i)
		if err := pub.PublishWithContext(ctx, "", q, false, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
}

// consumeInBackground runs ch.Consume(ctx, q, h) until stop is called:
// stop cancels ctx and checks what Consume returned; it runs once (a
// second call does nothing), at the latest when the test ends.
func consumeInBackground(t *testing.T, ch *slamqp.Channel, q string, h slamqp.Handler) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ch.Consume(ctx, q, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Consume: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ctx, stop
}
