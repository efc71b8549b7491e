package drill

// RocketMQ in the drill (issue 15). Every accepted order also sends an
// order notice on RocketMQ (topic order-notices, body the order event)
// through rocketmq-client-go with the adapters/slrocketmq interceptor:
// load-test notices go to order-notices_shadow with the run in their
// properties. A notifier service consumes them: a trunk and a proj-a lane
// instance, each the adapter's push consumer of group "notifier" with its
// shadow group (notifier_shadow, notifier-proj-a(_shadow)).
//
// There is no RocketMQ broker on the machines, so the embedded (and only)
// backend is the loopback fixture of adapters/slrocketmq/rmqfake: the real
// client speaks the remoting protocol to it over TCP. The invariants read
// the fixture's broker-side view (what it stored, with the properties as
// sent), not the client's: production notices only for accepted
// production orders, never a run property there; shadow notices only for
// accepted load-test orders, each with the run; none missing, none stored
// twice; every notice handled once by the notifier (trunk or lane, by its
// env tag), under the mark of its side.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

const (
	rmqNotices  = "order-notices"
	rmqNotifier = "notifier"
)

// rmqBus is the drill's RocketMQ: the fixture, the shop's producer and the
// notifier's consumers.
type rmqBus struct {
	srv       *rmqfake.Server
	s         *slrocketmq.Shadow
	p         rocketmq.Producer
	consumers []*slrocketmq.PushConsumer
	twin      string
	mu        sync.Mutex
	handled   map[string][]rmqHandled // order id -> deliveries to the notifier
	n         int                     // deliveries
}

type rmqHandled struct {
	mark propagation.Mark
	by   string // the instance's env ("" trunk)
}

// Notify implements shop.Notifier: the notice goes through the adapter's
// producer interceptor under the request's context.
//
// The producer sends without retries (WithRetry(0): a send retried after
// a timeout may be stored twice). A send that failed to find the topic's
// route sent nothing, so it alone is tried again: rocketmq-client-go
// looks a route up on a topic's first send and reports a name-server
// call that timed out (a loaded machine) as "route info not found". Each
// attempt sends a new message: the interceptor moves a marked message's
// topic to the shadow twin in place.
func (r *rmqBus) Notify(ctx context.Context, id string, val []byte) error {
	for attempt := 1; ; attempt++ {
		m := primitive.NewMessage(rmqNotices, val)
		m.WithKeys([]string{id})
		_, err := r.p.SendSync(ctx, m)
		if err == nil || attempt == rmqRouteAttempts || !strings.Contains(err.Error(), "route info not found") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// rmqRouteAttempts bounds Notify's sends of one notice whose topic route
// was not found.
const rmqRouteAttempts = 5

var _ shop.Notifier = (*rmqBus)(nil)

// openRocketMQ starts the fixture, the shop's producer and the notifier.
func (s *stores) openRocketMQ(ctx context.Context) error {
	rlog.SetLogLevel("error")
	srv, err := rmqfake.New(nil)
	if err != nil {
		return fmt.Errorf("drill: rocketmq fixture: %w", err)
	}
	s.closers = append(s.closers, func() { srv.Close() })
	r := &rmqBus{srv: srv, handled: map[string][]rmqHandled{}}
	s.desc["rocketmq"] = "RocketMQ fixture rmqfake " + srv.Addr() + " (embedded; no RocketMQ broker exists here)"
	lanes := envtag.StaticLanes{rmqNotifier: {projEnv}}
	opts := []slrocketmq.Option{slrocketmq.WithShadowTopics(rmqNotices), slrocketmq.WithShadowGroups(rmqNotifier), slrocketmq.WithLanes(lanes)}
	if r.s, err = slrocketmq.New(opts...); err != nil {
		return err
	}
	lane, err := slrocketmq.New(append(opts, slrocketmq.WithEnv(projEnv))...)
	if err != nil {
		return err
	}
	r.twin, _ = r.s.ShadowTopic(rmqNotices)
	srv.CreateTopic(rmqNotices, 4)
	srv.CreateTopic(r.twin, 4)
	inst := fmt.Sprintf("drill-%d", os.Getpid())
	if r.p, err = r.s.NewProducer(producer.WithNameServer([]string{srv.Addr()}), producer.WithGroupName("shop"),
		producer.WithInstanceName(inst+"-shop"), producer.WithRetry(0)); err != nil {
		return err
	}
	if err := r.p.Start(); err != nil {
		return fmt.Errorf("drill: rocketmq producer: %w", err)
	}
	s.closers = append(s.closers, func() { r.p.Shutdown() })
	for _, in := range []struct {
		sh  *slrocketmq.Shadow
		env string
	}{{r.s, ""}, {lane, projEnv}} {
		c, err := in.sh.NewPushConsumer(rmqNotifier, consumer.WithNameServer([]string{srv.Addr()}),
			consumer.WithInstance(fmt.Sprintf("%s-notifier-%s", inst, orDash(in.env))),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
		if err != nil {
			return err
		}
		env := in.env
		if err := c.Subscribe(rmqNotices, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mk := propagation.FromContext(ctx)
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, m := range msgs {
				var ev shop.Event
				if json.Unmarshal(m.Body, &ev) != nil || ev.ID == "" {
					continue
				}
				r.handled[ev.ID] = append(r.handled[ev.ID], rmqHandled{mark: mk, by: env})
				r.n++
			}
			return consumer.ConsumeSuccess, nil
		}); err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return fmt.Errorf("drill: rocketmq notifier: %w", err)
		}
		r.consumers = append(r.consumers, c)
	}
	s.rmq = r
	return nil
}

func orDash(env string) string {
	if env == "" {
		return "trunk"
	}
	return env
}

// stopRocketMQ waits (bounded) until the notifier handled every stored
// notice, then stops it.
func (s *stores) stopRocketMQ(ctx context.Context) {
	r := s.rmq
	if r == nil {
		return
	}
	stored := len(r.srv.Messages(rmqNotices)) + len(r.srv.Messages(r.twin))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r.mu.Lock()
		n := r.n
		r.mu.Unlock()
		if n >= stored {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a stray extra delivery would land now
	for _, c := range r.consumers {
		c.Shutdown()
	}
}

// verifyRocketMQ checks the invariants of the file comment: the topics
// through target (the per-store isolation table: accepted orders present,
// none of the other side or of refused requests, none twice, the run
// property of each side), the notifier's deliveries here.
func (s *stores) verifyRocketMQ(o *outcome, target targetFunc, add func(string, int, int, string)) {
	r := s.rmq
	if r == nil {
		return
	}
	envOf := map[string]map[string]string{"production": {}, "shadow": {}}
	for _, side := range []struct{ name, topic string }{{"production", rmqNotices}, {"shadow", r.twin}} {
		var rows []row
		bad := 0
		for _, m := range r.srv.Messages(side.topic) {
			var ev shop.Event
			if json.Unmarshal(m.Body, &ev) != nil || ev.ID == "" {
				bad++
				continue
			}
			envOf[side.name][ev.ID] = ev.Env
			rows = append(rows, row{id: ev.ID, run: m.Properties[bus.HeaderRun]})
		}
		target("rocketmq", "topic "+side.topic+" (broker side)", side.name, rows, nil, true)
		add(fmt.Sprintf("rocketmq topic %s: messages that are not order notices (must be none)", side.topic), 0, bad, "")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var rows [2][]row
	twice, wrongMark := 0, 0
	for i, side := range []string{"production", "shadow"} {
		for id, env := range envOf[side] {
			hs := r.handled[id]
			if len(hs) != 1 {
				twice += oneIf(len(hs) > 1)
				if len(hs) == 0 {
					continue
				}
			}
			h := hs[0]
			rows[i] = append(rows[i], row{id: id, run: h.mark.Run, by: h.by})
			wantRun := ""
			if side == "shadow" {
				wantRun = o.run
			}
			if h.mark.Run != wantRun || h.mark.Env != env {
				wrongMark++
			}
		}
	}
	notices := len(envOf["production"]) + len(envOf["shadow"])
	add("rocketmq notifier: stored notices handled (trunk or proj-a lane)", notices, len(rows[0])+len(rows[1]), "")
	add("rocketmq notifier: notices handled more than once (must be none)", 0, twice, "")
	add("rocketmq notifier: notices handled under a mark other than their side's run and env (must be none)", 0, wrongMark, "")
	s.verifyLanes("rocketmq", "notice", "production", envOf["production"], o.accepted("production"), rows[0], nil, add)
	s.verifyLanes("rocketmq", "notice", "shadow", envOf["shadow"], o.accepted("shadow"), rows[1], nil, add)
	if u := r.srv.Unknown(); len(u) > 0 {
		add("rocketmq: request codes the client sent that the fixture does not serve (must be none)", 0, len(u), fmt.Sprint(u))
	}
}
