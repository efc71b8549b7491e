package slamqp_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// The kill switch toggled mid-stream on RabbitMQ: marked messages are not
// handled while load tests are off (they wait in the shadow queue, judged
// there by a plain client, but for at most the prefetch the consumer holds
// unacknowledged), and each is handled once
// after the switch is on again; production flows all along.
func TestKillSwitchHoldsMarkedDeliveries(t *testing.T) {
	conn := dial(t)
	p := uniq()
	q := p + ".work"
	cleanup(t, conn, []string{q, q + "_shadow"}, nil)
	rt := bustest.SwitchRuntime(t)
	s := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithRuntime(rt), slamqp.WithPrefetch(8))
	raw := channel(t, conn)
	if err := s.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	sw := bustest.NewSwitch(func() bool { on, _ := rt.LoadTestEnabled(); return on })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Channel(channel(t, conn)).Consume(ctx, q, func(ctx context.Context, d *amqp091.Delivery) error {
			sw.Handle(ctx, string(d.Body))
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	publish := func(ctx context.Context, prefix string, n int) {
		for i := range n {
			if err := pub.PublishWithContext(ctx, "", q, false, false, amqp091.Publishing{MessageId: fmt.Sprintf("%s%03d", prefix, i), Body: fmt.Appendf(nil, "%s%03d", prefix, i)}); err != nil {
				t.Error(err)
				return
			}
		}
	}
	lt := propagation.With(context.Background(), propagation.Mark{Run: "r1"})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 10 {
			publish(lt, fmt.Sprintf("stream%d-", i), 20)
			time.Sleep(20 * time.Millisecond)
		}
	})
	publish(lt, "a-", 20)
	sw.WaitFor(t, "a-", 20)
	sw.Flip(func() { rt.SetLoadTest(false, "test") })
	publish(lt, "off-", 30)
	publish(context.Background(), "poff-", 10)
	sw.WaitFor(t, "poff-", 10)
	time.Sleep(500 * time.Millisecond)
	if d, _ := sw.Count("off-"); d != 0 {
		t.Fatalf("%d marked messages were handled while off", d)
	}
	// broker side: they wait in the shadow queue (at most the prefetch, 8, held)
	insp := channel(t, conn)
	st, err := insp.QueueDeclarePassive(q+"_shadow", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages < 30 {
		t.Fatalf("shadow queue holds %d ready messages while off, want >= 30", st.Messages)
	}
	wg.Wait()
	sw.Flip(func() { rt.SetLoadTest(true, "") })
	sw.WaitFor(t, "off-", 30)
	sw.WaitFor(t, "stream", 200)
	time.Sleep(200 * time.Millisecond)
	sw.Check(t, "stream", 3, 20+30+10+200)
}

// A message whose handler always fails is delivered a bounded number of
// times, then refused once (dead letter), and it does not starve the
// others; a run mark on the production queue is refused as an anomaly.
func TestPoisonBoundedAndAnomalyRefused(t *testing.T) {
	conn := dial(t)
	p := uniq()
	q := p + ".work"
	dlx, dlq := p+".dlx", p+".dead"
	cleanup(t, conn, []string{q, q + "_shadow", dlq}, []string{dlx})
	raw := channel(t, conn)
	if err := raw.ExchangeDeclare(dlx, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.QueueDeclare(dlq, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueueBind(dlq, "", dlx, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.QueueDeclare(q, false, false, false, false, amqp091.Table{"x-dead-letter-exchange": dlx}); err != nil {
		t.Fatal(err)
	}
	lg := bustest.NewLedger()
	s := newShadow(t, slamqp.WithMaxDeliveries(3), slamqp.WithRefused(func(ctx context.Context, d *amqp091.Delivery, err error) {
		lg.Refuse(string(d.Body), err)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Channel(channel(t, conn)).Consume(ctx, q, func(ctx context.Context, d *amqp091.Delivery) error {
			lg.Attempt(string(d.Body))
			if string(d.Body) == "poison" {
				return errors.New("always fails")
			}
			lg.Handle(string(d.Body), "consumer", propagation.FromContext(ctx))
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := raw.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{Body: []byte("poison")}); err != nil {
		t.Fatal(err)
	}
	if err := raw.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{Body: []byte("forged"), Headers: amqp091.Table{"x-shadowlane-RUN": "evil"}}); err != nil {
		t.Fatal(err)
	}
	ok := make([]string, 29)
	for i := range ok {
		ok[i] = fmt.Sprintf("ok-%02d", i)
		if err := raw.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{Body: []byte(ok[i])}); err != nil {
			t.Fatal(err)
		}
	}
	lg.WaitIDs(t, "the others", ok) // not starved by the poison
	lg.WaitRefused(t, "poison", "forged")
	time.Sleep(300 * time.Millisecond) // late deliveries, if any
	if dups, _ := lg.Check(t, ok, "consumer", "", ""); dups != 0 {
		t.Errorf("%d messages handled twice", dups)
	}
	lg.RefusedOnce(t, slamqp.ErrDeliveriesExhausted, "poison")
	lg.RefusedOnce(t, shadow.ErrBlocked, "forged") // a run mark on production
	if a, f := lg.Attempts("poison"), lg.Attempts("forged"); a != 3 || f != 0 {
		t.Errorf("poison delivered to the handler %d times (want 3), the forged mark %d times (want 0)", a, f)
	}
	dead := get(t, raw, dlq)
	if len(dead) != 2 {
		t.Errorf("dead-letter queue holds %d messages, want 2 (poison, forged)", len(dead))
	}
}

// Declare(LaneTopology(t)) on a lane instance declares "<q>-<env>", never
// "<q>-<env>-<env>"; with confirms, a publish to an undeclared shadow
// exchange is a typed error instead of silence.
func TestLaneTopologyOnceAndConfirms(t *testing.T) {
	conn := dial(t)
	p := uniq()
	x, q := p+".x", p+".q"
	cleanup(t, conn, []string{q, q + "-proj-a", q + "_shadow", q + "-proj-a_shadow", q + "-proj-a-proj-a"}, []string{x, x + "_shadow"})
	lane := newShadow(t, slamqp.WithShadowExchanges(x), slamqp.WithShadowQueues(q), slamqp.WithEnv("proj-a"))
	topo := slamqp.Topology{Exchanges: []slamqp.Exchange{{Name: x, Kind: "direct"}}, Queues: []slamqp.Queue{{Name: q}}, Bindings: []slamqp.Binding{{Queue: q, Exchange: x, Key: "k"}}}
	lt := lane.LaneTopology(lane.LaneTopology(topo))
	if len(lt.Queues) != 2 || lt.Queues[1].Name != q+"-proj-a" || len(lt.Bindings) != 1 || lt.Bindings[0].Queue != q {
		t.Fatalf("lane topology twice: %+v", lt)
	}
	raw := channel(t, conn)
	// An older version bound lane queues like their production queue;
	// Declare removes that binding (the trunk passes messages on).
	if err := lane.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueueBind(q+"-proj-a", "k", x, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := lane.Declare(raw, lt); err != nil {
		t.Fatal(err)
	}
	if err := raw.PublishWithContext(context.Background(), x, "k", false, false, amqp091.Publishing{Body: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pq, _ := raw.QueueDeclarePassive(q, false, false, false, false, nil)
		lq, err := raw.QueueDeclarePassive(q+"-proj-a", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if lq.Messages != 0 {
			t.Fatalf("the lane queue is still bound: it got %d messages", lq.Messages)
		}
		if pq.Messages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the production queue got %d messages", pq.Messages)
		}
	}
	if _, err := channel(t, conn).QueueDeclarePassive(q+"-proj-a-proj-a", false, false, false, false, nil); err == nil {
		t.Fatal("double lane suffix declared")
	}
	// confirms: an exchange with a configured twin that was never declared
	y := p + ".y"
	s := newShadow(t, slamqp.WithShadowExchanges(y), slamqp.WithConfirms())
	if err := raw.ExchangeDeclare(y, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cleanup(t, conn, nil, []string{y})
	pub := s.Channel(channel(t, conn))
	ctx, cancel := context.WithTimeout(propagation.With(context.Background(), propagation.Mark{Run: "r1"}), 10*time.Second)
	defer cancel()
	err := pub.PublishWithContext(ctx, y, "k", false, false, amqp091.Publishing{Body: []byte("x")})
	if !errors.Is(err, slamqp.ErrNotConfirmed) {
		t.Fatalf("publish to an undeclared shadow exchange: %v, want ErrNotConfirmed", err)
	}
	pub2 := s.Channel(channel(t, conn))
	if err := pub2.PublishWithContext(context.Background(), y, "k", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatalf("confirmed production publish: %v", err)
	}
}
