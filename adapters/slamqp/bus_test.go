package slamqp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

type counts struct {
	mu      sync.Mutex
	n       map[string]int
	whileOf map[string]bool
}

func newCounts() *counts { return &counts{n: map[string]int{}, whileOf: map[string]bool{}} }

func (c *counts) add(v string, off bool) {
	c.mu.Lock()
	c.n[v]++
	if off {
		c.whileOf[v] = true
	}
	c.mu.Unlock()
}

func (c *counts) distinct(prefix string) (d int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for v := range c.n {
		if strings.HasPrefix(v, prefix) {
			d++
		}
	}
	return d
}

func (c *counts) waitFor(t testing.TB, prefix string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.distinct(prefix) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: handled %d, want %d", prefix, c.distinct(prefix), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The kill switch toggled mid-stream on RabbitMQ: marked messages are not
// handled while load tests are off (they are handed back and wait in the
// shadow queue, judged there by a plain client), and each is handled once
// after the switch is on again; production flows all along.
func TestKillSwitchHoldsMarkedDeliveries(t *testing.T) {
	conn := dial(t)
	p := uniq()
	q := p + ".work"
	cleanup(t, conn, []string{q, q + "_shadow"}, nil)
	rt, err := shadowlane.New(shadowlane.Config{Service: "bus-test", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s, err := slamqp.New(slamqp.WithShadowQueues(q), slamqp.WithRuntime(rt), slamqp.WithPrefetch(8))
	if err != nil {
		t.Fatal(err)
	}
	raw := channel(t, conn)
	if err := s.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	cs := newCounts()
	var gate sync.RWMutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Channel(channel(t, conn)).Consume(ctx, q, func(ctx context.Context, d *amqp091.Delivery) error {
			gate.RLock()
			defer gate.RUnlock()
			on, _ := rt.LoadTestEnabled()
			cs.add(string(d.Body), propagation.IsLoadTest(ctx) && !on)
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
	cs.waitFor(t, "a-", 20)
	gate.Lock()
	rt.SetLoadTest(false, "test")
	gate.Unlock()
	publish(lt, "off-", 30)
	publish(context.Background(), "poff-", 10)
	cs.waitFor(t, "poff-", 10)
	time.Sleep(500 * time.Millisecond)
	if d := cs.distinct("off-"); d != 0 {
		t.Fatalf("%d marked messages were handled while off", d)
	}
	// broker side: they wait in the shadow queue, none unacknowledged
	insp := channel(t, conn)
	st, err := insp.QueueDeclarePassive(q+"_shadow", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages < 30 {
		t.Fatalf("shadow queue holds %d ready messages while off, want >= 30", st.Messages)
	}
	wg.Wait()
	gate.Lock()
	rt.SetLoadTest(true, "")
	gate.Unlock()
	cs.waitFor(t, "off-", 30)
	cs.waitFor(t, "stream", 200)
	time.Sleep(200 * time.Millisecond)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// A record the adapter decided while the switch was on may start its
	// handler just after the flip (the switch stops new decisions; work
	// already decided completes, like an HTTP request admitted before it):
	// at most one per consumer goroutine, and only among the records that
	// were streaming across the flip. A switch that did not hold would let
	// most of the records streamed while it was off through.
	var straddled []string
	for v, n := range cs.n {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
		if cs.whileOf[v] {
			if strings.HasPrefix(v, "stream") {
				straddled = append(straddled, v)
				continue
			}
			t.Errorf("%s handled while off", v)
		}
	}
	if len(straddled) > 3 {
		t.Errorf("%d records handled while load tests were off (at most 3 decided just before the flip may be): %v", len(straddled), straddled)
	} else if len(straddled) > 0 {
		t.Logf("%d records decided just before the flip were handled just after it: %v", len(straddled), straddled)
	}
	if len(cs.n) != 20+30+10+200 {
		t.Errorf("handled %d distinct, want 260", len(cs.n))
	}
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
	var mu sync.Mutex
	refused := map[string][]error{}
	s, err := slamqp.New(slamqp.WithMaxDeliveries(3), slamqp.WithRefused(func(ctx context.Context, d *amqp091.Delivery, err error) {
		mu.Lock()
		refused[string(d.Body)] = append(refused[string(d.Body)], err)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	tries := map[string]int{}
	cs := newCounts()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Channel(channel(t, conn)).Consume(ctx, q, func(ctx context.Context, d *amqp091.Delivery) error {
			mu.Lock()
			tries[string(d.Body)]++
			mu.Unlock()
			if string(d.Body) == "poison" {
				return errors.New("always fails")
			}
			cs.add(string(d.Body), false)
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
	for i := range 29 {
		if err := raw.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{Body: fmt.Appendf(nil, "ok-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	cs.waitFor(t, "ok-", 29)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(refused["poison"])
		mu.Unlock()
		if n >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if tries["poison"] != 3 || len(refused["poison"]) != 1 || !errors.Is(refused["poison"][0], slamqp.ErrDeliveriesExhausted) {
		t.Errorf("poison: %d deliveries, refused %v", tries["poison"], refused["poison"])
	}
	if tries["forged"] != 0 || len(refused["forged"]) != 1 || !errors.Is(refused["forged"][0], shadow.ErrBlocked) {
		t.Errorf("forged run mark on production: handled %d times, refused %v", tries["forged"], refused["forged"])
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
	lane, err := slamqp.New(slamqp.WithShadowExchanges(x), slamqp.WithShadowQueues(q), slamqp.WithEnv("proj-a"))
	if err != nil {
		t.Fatal(err)
	}
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
	s, err := slamqp.New(slamqp.WithShadowExchanges(y), slamqp.WithConfirms())
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.ExchangeDeclare(y, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cleanup(t, conn, nil, []string{y})
	pub := s.Channel(channel(t, conn))
	ctx, cancel := context.WithTimeout(propagation.With(context.Background(), propagation.Mark{Run: "r1"}), 10*time.Second)
	defer cancel()
	err = pub.PublishWithContext(ctx, y, "k", false, false, amqp091.Publishing{Body: []byte("x")})
	if !errors.Is(err, slamqp.ErrNotConfirmed) {
		t.Fatalf("publish to an undeclared shadow exchange: %v, want ErrNotConfirmed", err)
	}
	pub2 := s.Channel(channel(t, conn))
	if err := pub2.PublishWithContext(context.Background(), y, "k", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
		t.Fatalf("confirmed production publish: %v", err)
	}
}
