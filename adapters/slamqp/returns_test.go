package slamqp_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// With confirms, a mandatory publish the broker returns (basic.return:
// nothing bound for its key) is a typed error through the wrapper, for a
// marked publish (a shadow twin with nothing bound: also a *shadow.Error
// wrapping ErrNoShadowTarget) and a production one; a routable one is nil.
// Concurrent publishers on one channel each get their own answer, and
// returns of mandatory publishes on the raw channel neither stall the
// channel nor reach wrapper publishes. Judged on the real RabbitMQ.
func TestMandatoryReturnIsTypedError(t *testing.T) {
	conn := dial(t)
	p := uniq()
	x, q := p+".x", p+".q"
	cleanup(t, conn, []string{q, q + "_shadow"}, []string{x, x + "_shadow"})
	s := newShadow(t, slamqp.WithShadowExchanges(x), slamqp.WithShadowQueues(q), slamqp.WithConfirms())
	raw := channel(t, conn)
	// Production queue bound for "ok" and the shadow twin declared, but
	// only the production binding for "prod-only": a marked publish to
	// "prod-only" is unroutable on the twin.
	topo := slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: x, Kind: "direct"}},
		Queues:    []slamqp.Queue{{Name: q}},
		Bindings:  []slamqp.Binding{{Queue: q, Exchange: x, Key: "ok"}},
	}
	if err := s.Declare(raw, topo); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueueBind(q, "prod-only", x, false, nil); err != nil {
		t.Fatal(err)
	}
	pub := s.Channel(channel(t, conn))
	ctx := context.Background()
	lt := propagation.With(ctx, propagation.Mark{Run: "r1"})
	cases := []struct {
		ctx        context.Context
		key        string
		unroutable bool
		shadowErr  bool
	}{
		{ctx, "ok", false, false},
		{lt, "ok", false, false},
		{ctx, "nowhere", true, false},
		{lt, "nowhere", true, true},
		{ctx, "prod-only", false, false},
		{lt, "prod-only", true, true},
	}
	for i, c := range cases {
		err := pub.PublishWithContext(c.ctx, x, c.key, true, false, amqp091.Publishing{Body: fmt.Appendf(nil, "case-%d", i)})
		var se *shadow.Error
		switch {
		case c.unroutable != errors.Is(err, slamqp.ErrUnroutable):
			t.Errorf("case %d (%s, marked %v): %v, want unroutable %v", i, c.key, propagation.IsLoadTest(c.ctx), err, c.unroutable)
		case c.shadowErr != (errors.As(err, &se) && errors.Is(err, shadow.ErrNoShadowTarget)):
			t.Errorf("case %d: %v, want a *shadow.Error wrapping ErrNoShadowTarget: %v", i, err, c.shadowErr)
		}
	}
	// Non-mandatory: the broker drops silently, nothing to report.
	if err := pub.PublishWithContext(lt, x, "nowhere", false, false, amqp091.Publishing{Body: []byte("quiet")}); err != nil {
		t.Errorf("non-mandatory unroutable publish: %v", err)
	}
	// Raw mandatory publishes on the wrapped channel, returned in bulk,
	// while wrapper publishes run concurrently with mixed outcomes.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 300 {
			_ = pub.AMQP().PublishWithContext(ctx, x, "nowhere", true, false, amqp091.Publishing{Body: fmt.Appendf(nil, "raw-%d", i)})
		}
	})
	var mu sync.Mutex
	wrong := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				key, want := "ok", false
				if (g+i)%3 == 0 {
					key, want = "nowhere", true
				}
				err := pub.PublishWithContext(ctx, x, key, true, false, amqp091.Publishing{Body: fmt.Appendf(nil, "g%d-%d", g, i)})
				if errors.Is(err, slamqp.ErrUnroutable) != want || (err != nil && !errors.Is(err, slamqp.ErrUnroutable)) {
					mu.Lock()
					wrong++
					mu.Unlock()
					t.Errorf("g%d-%d to %s: %v", g, i, key, err)
				}
			}
		})
	}
	wg.Wait()
	// Broker side: the production queue got exactly the routable ones.
	n := len(get(t, raw, q))
	sh := get(t, raw, q+"_shadow")
	// routable: case-0, case-4 (production), and 8*40 - the returned third
	routable := 0
	for g := range 8 {
		for i := range 40 {
			if (g+i)%3 != 0 {
				routable++
			}
		}
	}
	if n != 2+routable || len(sh) != 1 {
		t.Errorf("broker: production queue %d (want %d), shadow queue %d (want 1: case-1)", n, 2+routable, len(sh))
	}
	if wrong != 0 {
		t.Errorf("%d concurrent publishes got another's answer", wrong)
	}
}
