package slamqp_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// TestStopMidBatchLosesNothing stops a consumer again and again while it
// holds deliveries (its prefetch) and is handling or passing them on, and
// leaves its channel open each time, as a process that stops one consumer
// and goes on does. A plain client then reads the queues: every message
// must be there or have been handled, exactly once, on its own side
// (production or shadow). A delivery the stopped consumer took but neither
// settled nor handed back would sit unacknowledged on the open channel,
// invisible to every other consumer: lost. Consume must also return nil,
// as documented for a stop.
//
// "forward" is a trunk whose messages all belong to a live lane (it passes
// each on to the lane's queue, confirmed); "handle" is a consumer without
// lanes handling every message.
func TestStopMidBatchLosesNothing(t *testing.T) {
	for _, mode := range []string{"forward", "handle"} {
		t.Run(mode, func(t *testing.T) { stopMidBatch(t, mode == "forward") })
	}
}

func stopMidBatch(t *testing.T, forward bool) {
	admin := dial(t)
	const env = "amqp7lane"
	q := "amqp7" + uniq() + ".work"
	lq := q + "-" + env
	queues := []string{q, q + "_shadow", lq, lq + "_shadow"}
	cleanup(t, admin, queues, nil)

	opts := []slamqp.Option{slamqp.WithShadowQueues(q)}
	if forward {
		opts = append(opts, slamqp.WithLanes(envtag.StaticLanes{q: {env}}))
	}
	trunk := newShadow(t, opts...)
	lane := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithEnv(env))
	raw := channel(t, admin)
	if err := lane.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err) // q, its lane queue and both shadow twins
	}
	pubShadow := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithConfirms())
	pub := pubShadow.Channel(channel(t, admin))

	type handling struct {
		id     string
		shadow bool
	}
	var (
		mu      sync.Mutex
		handled []handling
	)
	h := func(ctx context.Context, d *amqp091.Delivery) error {
		mu.Lock()
		handled = append(handled, handling{string(d.Body), propagation.FromContext(ctx).Run != ""})
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // work: the prefetch stays full
		return nil
	}
	progress := func() int64 {
		if forward {
			return trunk.Stats().Forwarded
		}
		mu.Lock()
		defer mu.Unlock()
		return int64(len(handled))
	}

	conn := dial(t) // the consumers' connection: it stays up, every stopped consumer's channel stays open
	const n = 160
	deadline := time.Now().Add(40 * time.Second)
	for it := 0; it < 12 && time.Now().Before(deadline); it++ {
		// Half production (env-tagged), half shadow (run-marked): the
		// shadow ones travel through the shadow queue.
		sides := map[string]bool{} // id -> shadow
		for k := range n {
			id := fmt.Sprintf("amqp7-%02d-%03d", it, k)
			m := propagation.Mark{Env: env}
			if k%2 == 1 {
				m.Run = "r-amqp7"
			}
			sides[id] = m.Run != ""
			if err := pub.PublishWithContext(propagation.With(context.Background(), m), "", q, true, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
		}
		mu.Lock()
		handled = handled[:0]
		mu.Unlock()

		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		base := progress()
		go func() { done <- trunk.Channel(ch).Consume(ctx, q, h) }()
		// Stop at a different point each time (4, 11, 18, ... taken),
		// always with deliveries in flight.
		stopAt := base + int64(4+7*it)
		for wait := time.Now().Add(10 * time.Second); progress() < stopAt && time.Now().Before(wait); {
			time.Sleep(100 * time.Microsecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("iteration %d: Consume returned %v on a stop, want nil", it, err)
		}

		// The broker side, read by a plain client: every message not
		// handled is back in a queue (handed back) or in a lane queue
		// (passed on), on its own side.
		got := map[string][]string{} // id -> where
		mu.Lock()
		for _, x := range handled {
			got[x.id] = append(got[x.id], fmt.Sprintf("handled(shadow=%v)", x.shadow))
		}
		mu.Unlock()
		for wait := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			for _, qn := range queues {
				for _, d := range get(t, raw, qn) {
					got[string(d.Body)] = append(got[string(d.Body)], qn)
				}
			}
			if len(got) >= n || time.Now().After(wait) {
				break
			}
		}
		var lost []string
		for id, shadow := range sides {
			where := got[id]
			switch {
			case len(where) == 0:
				lost = append(lost, id)
			case len(where) > 1:
				t.Errorf("iteration %d: %s found %d times: %v", it, id, len(where), where)
			case shadow != (strings.HasSuffix(where[0], "_shadow") || where[0] == "handled(shadow=true)"):
				t.Errorf("iteration %d: %s (shadow %v) switched sides: %s", it, id, shadow, where[0])
			}
		}
		for id := range got {
			if _, ok := sides[id]; !ok {
				t.Errorf("iteration %d: %s was never sent in this iteration", it, id)
			}
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			t.Fatalf("iteration %d (stopped after %d of %d taken): %d messages neither handled nor in a queue (held unacknowledged on the stopped consumer's open channel): %v",
				it, progress()-base, n, len(lost), lost)
		}
	}
}

// TestConsumersShareOneChannel starts and stops consumers on one wrapped
// channel from several goroutines at once, as a Consume's own consumers
// do (its queue and shadow queue, the hand-over consumers, the kill
// switch's cancel and consume again). amqp091-go gives a synchronous
// method's reply to whichever caller waits first, so two at once may each
// get the other's reply: a basic.cancel failed that way left its
// deliveries channel open for ever (handBack's wait), a basic.consume
// failed that way left a consumer at the broker whose deliveries were
// dropped unacknowledged. Every Consume must start and stop cleanly, and
// a plain client must find every message it did not handle in the queue.
func TestConsumersShareOneChannel(t *testing.T) {
	admin := dial(t)
	q := "amqp7" + uniq() + ".share"
	cleanup(t, admin, []string{q, q + "_shadow"}, nil)
	s := newShadow(t, slamqp.WithShadowQueues(q), slamqp.WithConfirms())
	raw := channel(t, admin)
	if err := s.Declare(raw, slamqp.Topology{Queues: []slamqp.Queue{{Name: q}}}); err != nil {
		t.Fatal(err)
	}
	const n = 400
	pub := s.Channel(channel(t, admin))
	for k := range n {
		id := fmt.Sprintf("amqp7-share-%03d", k)
		if err := pub.PublishWithContext(context.Background(), "", q, false, false, amqp091.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		handled = map[string]int{}
	)
	h := func(ctx context.Context, d *amqp091.Delivery) error {
		mu.Lock()
		handled[string(d.Body)]++
		mu.Unlock()
		return nil
	}
	c := s.Channel(channel(t, dial(t)))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	deadline := time.Now().Add(15 * time.Second)
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 40 && time.Now().Before(deadline); i++ {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- c.Consume(ctx, q, h) }()
				time.Sleep(time.Duration(i%5) * time.Millisecond)
				cancel()
				select {
				case err := <-done:
					if err != nil {
						errs <- err
						return
					}
				case <-time.After(30 * time.Second):
					errs <- errors.New("Consume did not return within 30 s of its stop")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Consume on a shared channel: %v", err)
	}
	if c.AMQP().IsClosed() {
		t.Error("the shared channel closed")
	}
	rest := map[string]int{}
	for wait := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, d := range get(t, raw, q) {
			rest[string(d.Body)]++
		}
		mu.Lock()
		total := len(handled) + len(rest)
		mu.Unlock()
		if total >= n || time.Now().After(wait) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var lost, twice []string
	for k := range n {
		id := fmt.Sprintf("amqp7-share-%03d", k)
		switch handled[id] + rest[id] {
		case 0:
			lost = append(lost, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	if len(lost) > 0 || len(twice) > 0 {
		t.Errorf("of %d messages %d neither handled nor in the queue (held unacknowledged on the open channel), e.g. %v; %d found more than once, e.g. %v",
			n, len(lost), lost[:min(len(lost), 5)], len(twice), twice[:min(len(twice), 5)])
	}
}
