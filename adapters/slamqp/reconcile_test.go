package slamqp_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// consumer runs Consume on its own connection until stop or the
// connection dies; done gets Consume's error.
type consumer struct {
	conn   *amqp091.Connection
	cancel context.CancelFunc
	done   chan error
}

func startConsumer(t *testing.T, s *slamqp.Shadow, queue string, h slamqp.Handler) *consumer {
	t.Helper()
	return startConsumerOn(t, dial(t), s, queue, h)
}

// startConsumerOn consumes on a new channel of conn; stop leaves the
// channel open (a consumer stopped while its process goes on).
func startConsumerOn(t *testing.T, conn *amqp091.Connection, s *slamqp.Shadow, queue string, h slamqp.Handler) *consumer {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{conn: conn, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- s.Channel(ch).Consume(ctx, queue, h) }()
	return c
}

func (c *consumer) stop() error {
	c.cancel()
	return <-c.done
}

// TestReconcileRabbitMQ sends production, marked and env-tagged messages
// with known ids through a topic exchange on the loopback RabbitMQ and
// consumes them with a trunk consumer, a lane (proj-b) dropped half-way
// and a lane (proj-a) whose queue is declared late, through a trunk crash
// (its connection closed mid-batch; the broker requeues what it held),
// handler errors (nack with requeue), poison messages and malformed
// marks. It reconciles by id from the consumer side (each message handled
// once by the right consumer under the right mark, the crash's
// at-least-once duplicates counted and bounded, refusals exactly once,
// other messages flowing while the poison is retried) and from the broker
// side (plain audit queues bound to both exchanges, the consumers' queues
// empty, the dead-letter queues holding exactly the refused messages).
func TestReconcileRabbitMQ(t *testing.T) {
	admin := dial(t)
	n := bustest.Messages()
	p := "mqbus" + uniq()
	x, dlx := p+".orders", p+".dlx"
	q, dead := p+".work", p+".dead"
	audit, auditSh := p+".audit", p+".audit_sh"
	cleanup(t, admin, []string{q, q + "_shadow", q + "-proj-a", q + "-proj-a_shadow", q + "-proj-b", q + "-proj-b_shadow", dead, dead + "_shadow", audit, auditSh}, []string{x, x + "_shadow", dlx, dlx + "_shadow"})

	lg := bustest.NewLedger()
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{q: {"proj-b"}})
	opts := []slamqp.Option{
		slamqp.WithShadowExchanges(x, dlx), slamqp.WithShadowQueues(q, dead), slamqp.WithLanes(&lanes), slamqp.WithMaxDeliveries(3),
		slamqp.WithRefused(func(ctx context.Context, d *amqp091.Delivery, err error) { lg.Refuse(string(d.Body), err) }),
	}
	trunk := newShadow(t, append(opts, slamqp.WithConfirms())...)
	laneA := newShadow(t, append(opts, slamqp.WithEnv("proj-a"))...)
	laneB := newShadow(t, append(opts, slamqp.WithEnv("proj-b"))...)
	topo := slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: x, Kind: "topic"}, {Name: dlx, Kind: "fanout"}},
		Queues:    []slamqp.Queue{{Name: q, Args: amqp091.Table{"x-dead-letter-exchange": dlx}}, {Name: dead}},
		Bindings:  []slamqp.Binding{{Queue: q, Exchange: x, Key: "order.#"}, {Queue: dead, Exchange: dlx}},
	}
	raw := channel(t, admin)
	if err := trunk.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if err := laneB.Declare(raw, slamqp.Topology{Queues: topo.Queues[:1], Bindings: topo.Bindings[:1]}); err != nil {
		t.Fatal(err)
	}
	// Audit queues: plain queues bound to both exchanges, read at the end
	// by a client that knows nothing of shadowlane.
	for _, a := range [][2]string{{audit, x}, {auditSh, x + "_shadow"}} {
		if _, err := raw.QueueDeclare(a[0], false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := raw.QueueBind(a[0], "#", a[1], false, nil); err != nil {
			t.Fatal(err)
		}
	}

	var poisonFirst, poisonLast atomic.Int64
	flaky := func(id string) bool { return strings.HasSuffix(id, "7") } // fails its first attempt
	handler := func(who string, crash func()) slamqp.Handler {
		return func(ctx context.Context, d *amqp091.Delivery) error {
			id := string(d.Body)
			if strings.HasPrefix(id, "X-") { // poison: Try fails it
				if poisonFirst.Load() == 0 {
					poisonFirst.Store(lg.Total() + 1)
				}
				poisonLast.Store(lg.Total() + 1)
			}
			if err := lg.Try(ctx, who, id, flaky); err != nil || crash == nil {
				return err
			}
			crash()
			return nil
		}
	}
	var (
		handledT1 atomic.Int64
		crashOnce sync.Once
		crashed   = make(chan struct{})
		t1        *consumer
	)
	crash := func() {
		if handledT1.Add(1) == int64(n/8) {
			crashOnce.Do(func() {
				t1.conn.Close() // mid-batch: the broker requeues the unacked
				close(crashed)
			})
		}
	}
	t1 = startConsumer(t, trunk, q, handler("trunk", crash))
	lb := startConsumer(t, laneB, q, handler("lane-b", func() { time.Sleep(2 * time.Millisecond) })) // falls behind

	pub := trunk.Channel(channel(t, admin))
	ctx := context.Background()
	send := func(ctx context.Context, id string) {
		if err := pub.PublishWithContext(ctx, x, "order.created", true, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
			t.Errorf("publish %s: %v", id, err)
		}
	}
	rawPub := func(id string, h amqp091.Table) {
		if err := raw.PublishWithContext(ctx, x, "order.created", false, false, amqp091.Publishing{MessageId: id, Body: []byte(id), Headers: h}); err != nil {
			t.Fatal(err)
		}
	}
	run := propagation.With(ctx, propagation.Mark{Run: "r1"})
	envA := propagation.With(ctx, propagation.Mark{Env: "proj-a"})
	envB := propagation.With(ctx, propagation.Mark{Env: "proj-b"})

	quarter := n / 4
	var pm struct {
		sync.Mutex
		p, m []string
	}
	var bg sync.WaitGroup
	bg.Go(func() {
		for i := range quarter {
			pid, mid := fmt.Sprintf("P-%05d", i), fmt.Sprintf("M-%05d", i)
			send(ctx, pid)
			send(run, mid)
			pm.Lock()
			pm.p, pm.m = append(pm.p, pid), append(pm.m, mid)
			pm.Unlock()
		}
	})
	send(ctx, "X-P-0")
	send(run, "X-M-0")
	var bad []string
	for i := range 5 {
		f, c := fmt.Sprintf("F-%d", i), fmt.Sprintf("C-%d", i)
		rawPub(f, amqp091.Table{"X-SHADOWLANE-RUN": "forged"})
		rawPub(c, amqp091.Table{"X-Shadowlane-Env": "proj-a", "x-shadowlane-env": "proj-b"})
		bad = append(bad, f, c)
	}
	half := quarter / 2
	var a1, a2, b1, b2 []string
	for i := range half {
		a1, b1 = append(a1, fmt.Sprintf("A-%05d", i)), append(b1, fmt.Sprintf("B-%05d", i))
		send(envA, a1[i])
		send(envB, b1[i])
	}
	select {
	case <-crashed:
	case <-time.After(45 * time.Second):
		t.Fatal("the trunk never reached its crash point")
	}
	if err := <-t1.done; err == nil {
		t.Error("the crashed consumer's Consume returned nil")
	}
	// Ordering 1 (issue 18): proj-b's lane is dropped while the crashed
	// consumer's deliveries are requeued and on their way to the next
	// trunk, and while the lane is behind: it hands back what it holds
	// and stops; the trunk handles the requeued proj-b messages and takes
	// the lane queue's backlog over (it finds the queue with a probe).
	lanes.Store(envtag.StaticLanes{q: nil})
	if err := lb.stop(); err != nil {
		t.Error(err)
	}
	var (
		handledT2 atomic.Int64
		stopOnce  sync.Once
		stopAt    = make(chan struct{})
	)
	conn2 := dial(t)
	t2 := startConsumerOn(t, conn2, trunk, q, handler("trunk", func() {
		if handledT2.Add(1) == int64(n/4) {
			stopOnce.Do(func() { close(stopAt) })
		}
	}))
	// Ordering 2: proj-a's lane starts late, while proj-a and proj-b
	// messages flow and the trunk takes proj-a: its queue is declared and
	// consumed, then the lane is listed. The trunk passes a message on
	// only once it sees the lane listed, so each is handled once.
	var phase2 sync.WaitGroup
	var ab sync.Mutex
	phase2.Go(func() {
		for i := half; i < quarter; i++ {
			a, b := fmt.Sprintf("A-%05d", i), fmt.Sprintf("B-%05d", i)
			ab.Lock()
			a2, b2 = append(a2, a), append(b2, b)
			ab.Unlock()
			send(envA, a)
			send(envB, b)
		}
	})
	if err := laneA.Declare(raw, slamqp.Topology{Queues: topo.Queues[:1], Bindings: topo.Bindings[:1]}); err != nil {
		t.Fatal(err)
	}
	la := startConsumer(t, laneA, q, handler("lane-a", nil))
	defer la.stop()
	time.Sleep(20 * time.Millisecond)
	lanes.Store(envtag.StaticLanes{q: {"proj-a"}})
	phase2.Wait()
	// A graceful stop mid-batch (its prefetched deliveries not handled
	// yet), the channel left open, and a new consumer on the same
	// connection: what the stopped one held must flow to the new one.
	select {
	case <-stopAt:
	case <-time.After(45 * time.Second):
		t.Fatal("the second trunk never reached its stop point")
	}
	if err := t2.stop(); err != nil {
		t.Error(err)
	}
	t3 := startConsumerOn(t, conn2, trunk, q, handler("trunk", nil))
	defer t3.stop()
	bg.Wait()
	all := append([]string{"X-P-0", "X-M-0"}, bad...)
	for _, s := range [][]string{pm.p, pm.m, a1, a2, b1, b2} {
		all = append(all, s...)
	}
	lg.WaitIDs(t, "all", all)
	// Broker side: the consumers' queues drain (everything settled).
	waitQueuesEmpty(t, admin, q, q+"_shadow", q+"-proj-a", q+"-proj-a_shadow", q+"-proj-b", q+"-proj-b_shadow")
	ch := channel(t, admin)
	time.Sleep(500 * time.Millisecond) // unacked redeliveries in flight

	dups := 0
	check := func(list []string, by, run, env string) map[string]int {
		d, first := lg.Check(t, list, by, run, env)
		dups += d
		return first
	}
	dupsBefore := dups
	check(pm.p, "trunk", "", "")
	check(pm.m, "trunk", "r1", "")
	prodDups := dups - dupsBefore
	check(a1, "trunk|lane-a", "", "proj-a")                      // the late lane's once the trunk, behind after its crash, saw it listed
	byLaneA := check(a2, "lane-a|trunk", "", "proj-a")["lane-a"] // the trunk's until it saw the lane listed
	byLaneB := check(b1, "lane-b|trunk", "", "proj-b")["lane-b"] // the trunk's: the dropped lane's backlog
	check(b2, "trunk", "", "proj-b")
	lanesDups := dups - prodDups
	// A crash redelivers what the consumer handled but could not
	// acknowledge: bounded by what the two queues' consumers held
	// (prefetch each) when the connection went. Each is counted as a
	// redelivery the consumer did not ask for.
	st := trunk.Stats()
	if dups > 2*slamqp.DefaultPrefetch || int64(dups) > st.Redelivered {
		t.Errorf("%d duplicates, %d counted redeliveries: want at most %d (the crashed consumer's handled but unacknowledged deliveries), all counted", dups, st.Redelivered, 2*slamqp.DefaultPrefetch)
	}
	if byLaneA == 0 {
		t.Error("the late lane handled none of its messages")
	}
	poison := []string{"X-P-0", "X-M-0"}
	lg.RefusedOnce(t, slamqp.ErrDeliveriesExhausted, poison...)
	for _, id := range poison {
		// The consumer counts deliveries itself (classic queue): a crash
		// resets the count, so at most twice the bound.
		if a := lg.Attempts("trunk/" + id); a < 1 || a > 6 {
			t.Errorf("poison %s tried %d times", id, a)
		}
	}
	if poisonLast.Load() <= poisonFirst.Load() {
		t.Error("no other message was handled while the poison messages were retried (starved)")
	}
	forged, conflict := bustest.Split(bad, func(id string) bool { return id[0] != 'C' })
	lg.RefusedOnce(t, shadow.ErrBlocked, forged...)
	lg.RefusedOnce(t, shadow.ErrUnsupported, conflict...)

	// Broker side: audit queues hold each id once, on its side.
	seen := func(queue string) map[string]amqp091.Table {
		out := map[string]amqp091.Table{}
		for _, d := range get(t, ch, queue) {
			if _, dup := out[string(d.Body)]; dup {
				t.Errorf("broker: %s routed twice to %s", d.Body, queue)
			}
			out[string(d.Body)] = d.Headers
		}
		return out
	}
	prod, sh := seen(audit), seen(auditSh)
	for id, h := range prod {
		if strings.HasPrefix(id, "M-") || id == "X-M-0" {
			t.Errorf("broker: marked %s reached the production exchange", id)
		}
		if _, marked := h[bus.HeaderRun]; marked {
			t.Errorf("broker: %s carries a run header on the production exchange", id)
		}
	}
	for id, h := range sh {
		if !strings.HasPrefix(id, "M-") && id != "X-M-0" {
			t.Errorf("broker: %s reached the shadow exchange", id)
		}
		if h[bus.HeaderRun] != "r1" {
			t.Errorf("broker: %s on the shadow exchange has run %v", id, h[bus.HeaderRun])
		}
	}
	wantProd := len(pm.p) + len(a1) + len(a2) + len(b1) + len(b2) + 1 + len(bad)
	if len(prod) != wantProd || len(sh) != len(pm.m)+1 {
		t.Errorf("broker: production exchange routed %d ids (want %d), shadow exchange %d (want %d)", len(prod), wantProd, len(sh), len(pm.m)+1)
	}
	deadP, deadS := seen(dead), seen(dead+"_shadow")
	if len(deadP) != 1+len(bad) || deadP["X-P-0"] == nil && len(deadP) > 0 {
		t.Errorf("broker: production dead letters %d, want %d (poison + malformed, once each)", len(deadP), 1+len(bad))
	}
	if _, ok := deadP["X-P-0"]; !ok {
		t.Error("broker: the production poison message is not dead-lettered")
	}
	if _, ok := deadS["X-M-0"]; !ok || len(deadS) != 1 {
		t.Errorf("broker: shadow dead letters %v, want only X-M-0", deadS)
	}
	t.Logf("amqp reconcile: sent %d (production %d, marked %d, proj-a %d+%d, proj-b %d+%d, poison 2, malformed %d); broker: production exchange %d, shadow exchange %d, dead letters %d+%d; handled %d ids, at-least-once duplicates %d (crash; %d counted redeliveries), of them on lane messages %d; dropped lane handled %d of %d (the trunk the rest); late lane took %d of %d; trunk stats %+v; refused %d",
		wantProd+len(sh), len(pm.p), len(pm.m), len(a1), len(a2), len(b1), len(b2), len(bad), len(prod), len(sh), len(deadP), len(deadS), lg.Ids(), dups, st.Redelivered, lanesDups, byLaneB, len(b1), byLaneA, len(a2), st, lg.RefusedIds())
}
