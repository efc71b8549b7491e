package drill

// The shop's other two buses, beside the Kafka order events:
//
//   - shipment requests on NATS JetStream (stream SHIPMENTS, subject
//     shop.shipments; shadow twins SHIPMENTS_shadow and
//     shadow.shop.shipments), consumed by the shipping service through
//     adapters/slnats, which records each order in Redis (shipment:<id>);
//     the service runs a trunk and a proj-a lane instance (environment
//     lanes: proj-a-tagged requests are the lane's); embedded nats-server
//     by default, --nats for a real one;
//   - fulfilment requests on RabbitMQ (exchange shop, key fulfil, queue
//     fulfilment; twins shop_shadow and fulfilment_shadow), consumed by the
//     fulfilment service through adapters/slamqp, which records each order in
//     Redis (fulfilment:<id>); only with --amqp (there is no embedded
//     RabbitMQ).
//
// After the run the drill reads the brokers back with plain clients: the
// JetStream streams message by message, and, for RabbitMQ, two audit
// queues it bound itself (plain amqp091, no shadowlane) to the production
// and the shadow exchange, which hold a copy of everything routed there.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"

	slamqp "github.com/shadowlane/shadowlane/adapters/slamqp"
	slnats "github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/examples/shop"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// buses is the NATS and RabbitMQ part of one drill's stores.
type buses struct {
	nc         *nats.Conn // plain, direct: setup and read-back
	js         jetstream.JetStream
	pjs        jetstream.JetStream // the shop's (publish, consume): through the fault proxy with --faults, else js
	ns         *slnats.Shadow
	ship       []*slnats.Consumption // trunk and proj-a lane
	shipSh     string                // shadow stream name
	laneBucket string                // key-value bucket of the shipping lanes' epochs

	aconn     *amqp091.Connection // direct: setup and read-back
	aurl      string              // the shop's URL: through the fault proxy with --faults
	pub       amqpPub             // the shop's publisher (redials)
	as        *slamqp.Shadow      // the trunk's (also publishes)
	aslane    *slamqp.Shadow      // the proj-a lane instance's
	laneQs    []string            // the lane's queues (production and shadow)
	apub      *amqp091.Channel    // wrapped for the shop's publishes
	astop     context.CancelFunc
	adone     chan error
	consumers int       // fulfilment consumers running
	audit     [2]string // audit queues: production, shadow exchange
	shadowExc string
	shadowQ   string

	// Messages the consumer services handled (both sides), to know when
	// they caught up; the verification reads the stores, not these.
	shipped, fulfilled atomic.Int64
	redials            atomic.Int64 // RabbitMQ connections dialled again after they broke
}

func (s *stores) openNATS(ctx context.Context, b Backends, tmp, uniq string) error {
	uri := b.NATS
	if uri == "" {
		srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: filepath.Join(tmp, "nats"), NoLog: true, NoSigs: true})
		if err != nil {
			return fmt.Errorf("drill: embedded nats-server: %w", err)
		}
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			return errors.New("drill: embedded nats-server did not start within 10s")
		}
		s.closers = append(s.closers, func() { srv.Shutdown(); srv.WaitForShutdown() })
		uri = srv.ClientURL()
		s.desc["nats"] = "nats-server (embedded, JetStream)"
	} else {
		s.desc["nats"] = "NATS " + redactURL(uri)
		// Unique names on a shared server. Stream names cannot hold '.'.
		u := strings.TrimSuffix(uniq, "_")
		s.names.Shipments, s.names.ShipStream = u+"."+s.names.Shipments, strings.ToUpper(u)+"_"+s.names.ShipStream
	}
	nc, err := nats.Connect(uri, nats.Name("shadowlane drill"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("drill: nats %s: %w", s.desc["nats"], err)
	}
	s.closers = append(s.closers, nc.Close)
	s.bus.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("drill: nats: %w", err)
	}
	s.bus.js, s.bus.pjs = js, js
	if s.faults {
		if s.bus.pjs, err = s.natsThroughProxy(uri); err != nil {
			return err
		}
	}
	ns, err := slnats.New(slnats.WithShadowSubjects(s.names.Shipments))
	if err != nil {
		return err
	}
	s.bus.ns = ns
	// The production stream (as the app's migration would create it) and
	// its twin, derived by the adapter. Memory storage: drill data is
	// thrown away.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(cctx, jetstream.StreamConfig{Name: s.names.ShipStream, Subjects: []string{s.names.Shipments}, Storage: jetstream.MemoryStorage}); err != nil {
		return fmt.Errorf("drill: nats create stream %s: %w", s.names.ShipStream, err)
	}
	s.bus.shipSh = ns.StreamName(s.names.ShipStream)
	s.bus.laneBucket = s.names.ShipStream + "_lanes" // the shipping lanes' epochs
	s.closers = append(s.closers, func() {
		//lostctx:ok clean-up after the drill: the setup context may be done, and nothing here is marked
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		js.DeleteStream(dctx, s.names.ShipStream)
		js.DeleteStream(dctx, s.bus.shipSh)
		js.DeleteKeyValue(dctx, s.bus.laneBucket)
	})
	if _, err := ns.CreateShadowStream(cctx, js, s.names.ShipStream); err != nil {
		return fmt.Errorf("drill: nats shadow stream: %w", err)
	}
	return nil
}

// natsThroughProxy connects the shop's publisher to the NATS server at uri
// through a fault proxy.
func (s *stores) natsThroughProxy(uri string) (jetstream.JetStream, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("drill: nats URL: %w", err)
	}
	addr, err := s.proxy("nats", u.Host)
	if err != nil {
		return nil, err
	}
	u.Host = addr
	// Reconnect for ever, and notice a blackholed connection within
	// a few seconds.
	pnc, err := nats.Connect(u.String(), nats.Name("shadowlane drill shop"), nats.Timeout(2*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.PingInterval(time.Second), nats.MaxPingsOutstanding(3),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // broken connections are the point here
	if err != nil {
		return nil, fmt.Errorf("drill: nats through the fault proxy: %w", err)
	}
	s.closers = append(s.closers, pnc.Close)
	return jetstream.New(pnc)
}

// shippingDurable is the shipping service's durable consumer (and the
// name its environment lanes are keyed by).
const shippingDurable = "shipping"

// startShipping runs the shipping service: a trunk instance and a proj-a
// lane instance, each the adapter's JetStream consumer on the production
// stream and its shadow twin. The trunk's lanes say proj-a has a lane for
// "shipping", so proj-a-tagged requests are the lane's and everything else
// the trunk's.
func (s *stores) startShipping(ctx context.Context) error {
	counted := func(h slnats.JSHandler) slnats.JSHandler {
		return func(ctx context.Context, m jetstream.Msg) error {
			err := h(ctx, m)
			if err == nil {
				s.bus.shipped.Add(1)
			}
			return err
		}
	}
	lanes := []slnats.Option{slnats.WithLanes(envtag.StaticLanes{shippingDurable: {projEnv}}), slnats.WithLaneBucket(s.bus.laneBucket)}
	trunk, err := slnats.New(append(lanes, slnats.WithShadowSubjects(s.names.Shipments))...)
	if err != nil {
		return err
	}
	lane, err := slnats.New(append(lanes, slnats.WithShadowSubjects(s.names.Shipments), slnats.WithEnv(projEnv))...)
	if err != nil {
		return err
	}
	cfg := jetstream.ConsumerConfig{Durable: shippingDurable, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096}
	for _, in := range []struct {
		ns  *slnats.Shadow
		env string
	}{{trunk, ""}, {lane, projEnv}} {
		c, err := in.ns.ConsumeJetStream(context.WithoutCancel(ctx), s.bus.pjs, s.names.ShipStream, cfg, counted(s.store.ShippingHandler(in.env, s.refuse)))
		if err != nil {
			return fmt.Errorf("drill: shipping consumer %q: %w", in.env, err)
		}
		s.bus.ship = append(s.bus.ship, c)
	}
	s.closers = append(s.closers, s.stopShipping)
	return nil
}

func (s *stores) stopShipping() {
	for _, c := range s.bus.ship {
		c.Stop()
	}
	s.bus.ship = nil
}

func (s *stores) openAMQP(ctx context.Context, b Backends, uniq string) error {
	if b.AMQP == "" {
		return nil
	}
	s.desc["amqp"] = "RabbitMQ " + redactURL(b.AMQP)
	s.names.Exchange, s.names.Fulfilment = uniq+s.names.Exchange, uniq+s.names.Fulfilment
	conn, err := amqp091.DialConfig(b.AMQP, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("drill: amqp %s: %w", s.desc["amqp"], err)
	}
	s.bus.aconn = conn
	s.closers = append(s.closers, func() { conn.Close() })
	if s.bus.aurl, err = s.amqpURL(b.AMQP); err != nil {
		return err
	}
	s.closers = append(s.closers, s.bus.pub.close)
	as, err := slamqp.New(slamqp.WithShadowExchanges(s.names.Exchange), slamqp.WithShadowQueues(s.names.Fulfilment),
		slamqp.WithLanes(envtag.StaticLanes{s.names.Fulfilment: {projEnv}}))
	if err != nil {
		return err
	}
	lane, err := slamqp.New(slamqp.WithShadowExchanges(s.names.Exchange), slamqp.WithShadowQueues(s.names.Fulfilment), slamqp.WithEnv(projEnv),
		slamqp.WithLanes(envtag.StaticLanes{s.names.Fulfilment: {projEnv}}))
	if err != nil {
		return err
	}
	s.bus.as, s.bus.aslane = as, lane
	s.bus.shadowExc, s.bus.shadowQ = as.ShadowName(s.names.Exchange), as.ShadowName(s.names.Fulfilment)
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("drill: amqp channel: %w", err)
	}
	topo := slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: s.names.Exchange, Kind: amqp091.ExchangeDirect}},
		Queues:    []slamqp.Queue{{Name: s.names.Fulfilment}},
		Bindings:  []slamqp.Binding{{Queue: s.names.Fulfilment, Exchange: s.names.Exchange, Key: s.names.FulfilKey}},
	}
	s.closers = append(s.closers, func() {
		// Leave nothing behind on the shared server.
		if c, err := conn.Channel(); err == nil {
			for _, q := range append([]string{s.names.Fulfilment, s.bus.shadowQ, s.bus.audit[0], s.bus.audit[1]}, s.bus.laneQs...) {
				if q != "" {
					c.QueueDelete(q, false, false, false)
				}
			}
			c.ExchangeDelete(s.names.Exchange, false, false)
			c.ExchangeDelete(s.bus.shadowExc, false, false)
			c.Close()
		}
	})
	for _, q := range lane.LaneTopology(topo).Queues { // the production queue and its lane copy
		if q.Name != s.names.Fulfilment {
			s.bus.laneQs = append(s.bus.laneQs, q.Name, lane.ShadowName(q.Name))
		}
	}
	if len(s.bus.laneQs) != 2 {
		return fmt.Errorf("drill: amqp: the proj-a lane has queues %v, want one and its twin", s.bus.laneQs)
	}
	// The trunk's topology and twins, then the lane's queues (unbound:
	// the trunk passes proj-a's messages on to them) and theirs, as each
	// instance would declare at start.
	if err := as.Declare(ch, topo); err != nil {
		return fmt.Errorf("drill: amqp declare: %w", err)
	}
	if err := lane.Declare(ch, topo); err != nil {
		return fmt.Errorf("drill: amqp declare (proj-a lane): %w", err)
	}
	if err := s.auditTaps(ch, uniq); err != nil {
		return err
	}
	s.bus.apub = ch
	return nil
}

// amqpURL is the URL the shop's RabbitMQ clients dial: raw, or with
// --faults a fault proxy in front of its host.
func (s *stores) amqpURL(raw string) (string, error) {
	if !s.faults {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("drill: amqp URL: %w", err)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":5672"
	}
	addr, err := s.proxy("amqp", host)
	if err != nil {
		return "", err
	}
	u.Host = addr
	return u.String(), nil
}

// auditTaps declares the audit taps: plain queues bound to both
// exchanges, so the broker keeps a copy of everything routed to either
// side.
func (s *stores) auditTaps(ch *amqp091.Channel, uniq string) error {
	for i, ex := range []string{s.names.Exchange, s.bus.shadowExc} {
		q := fmt.Sprintf("%saudit-%d", uniq, i)
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			return fmt.Errorf("drill: amqp audit queue: %w", err)
		}
		s.bus.audit[i] = q
		if err := ch.QueueBind(q, s.names.FulfilKey, ex, false, nil); err != nil {
			return fmt.Errorf("drill: amqp audit binding: %w", err)
		}
	}
	return nil
}

// startFulfilment runs the fulfilment service: a trunk and a proj-a lane
// instance, each the adapter's consumer of its queue and the queue's
// twin, on its own connection (through the fault proxy with --faults).
// A consumer whose connection breaks dials again and resumes: the broker
// redelivers whatever it had not acknowledged.
func (s *stores) startFulfilment(ctx context.Context) error {
	if s.bus.as == nil {
		return nil
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bus.astop, s.bus.adone = cancel, make(chan error, 2)
	s.closers = append(s.closers, func() { s.stopFulfilment() })
	for _, in := range []struct {
		as  *slamqp.Shadow
		env string
	}{{s.bus.as, ""}, {s.bus.aslane, projEnv}} {
		fh := s.store.FulfilmentHandler(in.env, s.refuse)
		h := func(ctx context.Context, d *amqp091.Delivery) error {
			err := fh(ctx, d)
			if err == nil {
				s.bus.fulfilled.Add(1)
			}
			return err
		}
		s.bus.consumers++
		go func() {
			for cctx.Err() == nil {
				if err := s.consumeFulfilment(cctx, in.as, h); err != nil && cctx.Err() == nil {
					s.bus.redials.Add(1)
					select {
					case <-cctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
			s.bus.adone <- nil
		}()
	}
	return nil
}

// consumeFulfilment runs one fulfilment consumer on a fresh connection
// until it breaks or ctx ends.
func (s *stores) consumeFulfilment(ctx context.Context, as *slamqp.Shadow, h slamqp.Handler) error {
	conn, err := amqp091.DialConfig(s.bus.aurl, amqp091.Config{Dial: amqp091.DefaultDial(2 * time.Second), Heartbeat: 2 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(512, 0, false); err != nil {
		return err
	}
	return as.Channel(ch).Consume(ctx, s.names.Fulfilment, h)
}

// amqpPub is the shop's RabbitMQ publisher: the trunk adapter's channel on
// a connection of its own (through the fault proxy with --faults), dialled
// again when it broke.
type amqpPub struct {
	s    *stores
	mu   sync.Mutex
	conn *amqp091.Connection
	raw  *amqp091.Channel
	ch   *slamqp.Channel
}

func (p *amqpPub) channel() (*slamqp.Channel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil && !p.raw.IsClosed() {
		return p.ch, nil
	}
	if p.conn == nil || p.conn.IsClosed() {
		if p.conn != nil {
			p.s.bus.redials.Add(1)
		}
		c, err := amqp091.DialConfig(p.s.bus.aurl, amqp091.Config{Dial: amqp091.DefaultDial(2 * time.Second), Heartbeat: 2 * time.Second})
		if err != nil {
			return nil, err
		}
		p.conn = c
	}
	raw, err := p.conn.Channel()
	if err != nil {
		p.conn.Close()
		return nil, err
	}
	p.raw, p.ch = raw, p.s.bus.as.Channel(raw)
	return p.ch, nil
}

// PublishWithContext implements shop.Publisher.
func (p *amqpPub) PublishWithContext(ctx context.Context, exchange, key string, mandatory, immediate bool, msg amqp091.Publishing) error {
	ch, err := p.channel()
	if err != nil {
		return err
	}
	return ch.PublishWithContext(ctx, exchange, key, mandatory, immediate, msg)
}

func (p *amqpPub) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close()
	}
}

func (s *stores) stopFulfilment() error {
	if s.bus.astop == nil {
		return nil
	}
	s.bus.astop()
	s.bus.astop = nil
	var errs []error
	timeout := time.After(10 * time.Second)
	for ; s.bus.consumers > 0; s.bus.consumers-- {
		select {
		case err := <-s.bus.adone:
			errs = append(errs, err)
		case <-timeout:
			return errors.New("fulfilment consumers did not stop within 10s")
		}
	}
	return errors.Join(errs...)
}

// streamRecords reads every message of a JetStream stream with a plain
// ordered consumer: the order id (from the body) and the run header.
func (s *stores) streamRecords(ctx context.Context, stream string) (rows []row, msgs uint64, err error) {
	st, err := s.bus.js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, 0, err
	}
	msgs = info.State.Msgs
	if msgs == 0 {
		return nil, 0, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, msgs, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for uint64(len(rows)) < msgs && rctx.Err() == nil {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return rows, msgs, err
		}
		for m := range batch.Messages() {
			var ev struct {
				ID string `json:"id"`
			}
			json.Unmarshal(m.Data(), &ev)
			rows = append(rows, row{id: ev.ID, run: m.Headers().Get(bus.HeaderRun)})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return rows, msgs, err
		}
	}
	return rows, msgs, rctx.Err()
}

// auditRecords drains an audit queue with a plain channel: the order id
// (message id) and the run header of every message routed to its
// exchange.
func (s *stores) auditRecords(ctx context.Context, queue string) ([]row, error) {
	ch, err := s.bus.aconn.Channel()
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	var rows []row
	if q.Messages == 0 {
		return nil, nil
	}
	if err := ch.Qos(2048, 0, false); err != nil {
		return nil, err
	}
	ds, err := ch.Consume(queue, "", true, true, false, false, nil)
	if err != nil {
		return nil, err
	}
	timeout := time.After(30 * time.Second)
	for len(rows) < q.Messages {
		select {
		case d, ok := <-ds:
			if !ok {
				return rows, errors.New("audit channel closed")
			}
			run, _ := d.Headers[bus.HeaderRun].(string)
			rows = append(rows, row{id: d.MessageId, run: run})
		case <-timeout:
			return rows, fmt.Errorf("read %d of %d messages within 30s", len(rows), q.Messages)
		case <-ctx.Done():
			return rows, ctx.Err()
		}
	}
	return rows, nil
}

// queueDepth is a queue's ready message count, read passively.
func (s *stores) queueDepth(queue string) (int, error) {
	ch, err := s.bus.aconn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	return q.Messages, err
}

// redisTasks reads back the keys a consumer service wrote: <key prefix>*
// on one side, with the run of the recorded mark and the instance that
// recorded it.
func (s *stores) redisTasks(ctx context.Context, prefix string, shadowSide bool) ([]row, error) {
	if shadowSide {
		prefix = shadowKey(prefix)
	}
	keys, err := scanAll(ctx, s.rraw, prefix+"*")
	if err != nil {
		return nil, err
	}
	var out []row
	for i := 0; i < len(keys); i += 500 {
		chunk := keys[i:min(i+500, len(keys))]
		vals, err := s.rraw.MGet(ctx, chunk...).Result()
		if err != nil {
			return out, err
		}
		for j, v := range vals {
			var t shop.Task
			if str, ok := v.(string); ok {
				json.Unmarshal([]byte(str), &t)
			}
			out = append(out, row{id: strings.TrimPrefix(chunk[j], prefix), run: t.Run, by: t.By})
		}
	}
	return out, nil
}

// waitTasks waits (bounded) until the consumer services handled at
// least n messages each and then nothing more for half a second
// (requests of unknown outcome may add a few).
func (s *stores) waitTasks(ctx context.Context, n int, max time.Duration) {
	deadline := time.Now().Add(max)
	var last [2]int64
	stable := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		now := [2]int64{s.bus.shipped.Load(), s.bus.fulfilled.Load()}
		if now != last {
			last, stable = now, time.Now()
		}
		if (s.bus.js == nil || now[0] >= int64(n)) && (s.bus.as == nil || now[1] >= int64(n)) && time.Since(stable) > 500*time.Millisecond {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verifyBuses reads the NATS and RabbitMQ side back (see the file comment).
func (s *stores) verifyBuses(ctx context.Context, o *outcome, target targetFunc, add func(string, int, int, string)) {
	if s.bus.js == nil && s.bus.as == nil {
		return
	}
	label := map[string]string{"production": "production", "shadow": "load-test"}
	// The accepted orders' env tags, per side, for the lane checks.
	envs := map[string]map[string]string{}
	var envErr error
	for _, side := range []string{"production", "shadow"} {
		t := s.names.Orders
		if side == "shadow" {
			t = shadowTable(t)
		}
		var err error
		if envs[side], err = s.orderEnvs(ctx, t); err != nil {
			envErr = err
		}
	}
	// tasks checks what a consumer service recorded in Redis, per side,
	// and who recorded it.
	tasks := func(bus, what, prefix string) {
		for _, side := range []string{"production", "shadow"} {
			rows, err := s.redisTasks(ctx, prefix, side == "shadow")
			p := prefix + "*"
			if side == "shadow" {
				p = shadowKey(p)
			}
			target("redis", p, side, rows, err, true)
			if err == nil {
				err = envErr
			}
			s.verifyLanes(bus, what, label[side], envs[side], o.accepted(side), rows, err, add)
		}
	}
	if s.bus.js != nil {
		for _, side := range []string{"production", "shadow"} {
			stream := s.names.ShipStream
			if side == "shadow" {
				stream = s.bus.shipSh
			}
			rows, msgs, err := s.streamRecords(ctx, stream)
			in := target("nats", "stream "+stream, side, rows, err, true)
			add(fmt.Sprintf("nats stream %s: messages stored = accepted %s orders + unknown-outcome ones recorded", stream, label[side]), in.Total, int(msgs), "")
		}
		tasks("nats", "shipment", s.names.ShipmentKey(""))
	}
	if s.bus.as != nil {
		for i, side := range []string{"production", "shadow"} {
			rows, err := s.auditRecords(ctx, s.bus.audit[i])
			ex, q := s.names.Exchange, s.names.Fulfilment
			if side == "shadow" {
				ex, q = s.bus.shadowExc, s.bus.shadowQ
			}
			target("amqp", "exchange "+ex, side, rows, err, true)
			for _, q := range []string{q, s.bus.laneQs[i]} {
				n, err := s.queueDepth(q)
				add(fmt.Sprintf("amqp queue %s: left unconsumed by the fulfilment service", q), 0, n, errString(err))
			}
		}
		tasks("amqp", "fulfilment", s.names.FulfilmentKey(""))
	}
}

// verifyLanes checks who handled each accepted order's request on a bus,
// on one side: the proj-a lane for proj-a-tagged orders (envOf, from the
// SQL orders table), the trunk for the rest (rows: what the consumer
// instances recorded).
func (s *stores) verifyLanes(bus, what, label string, envOf map[string]string, accepted map[string]bool, rows []row, err error, add func(string, int, int, string)) {
	by := make(map[string]string, len(rows))
	for _, r := range rows {
		by[r.id] = r.by
	}
	// Accepted orders must have been handled by their instance; orders
	// of unknown outcome may be missing, but never handled by the other.
	var laneN, laneOK, trunkN, trunkOK, wrongLane, wrongTrunk int
	for id, env := range envOf {
		got, ok := by[id]
		if env == projEnv {
			if accepted[id] {
				laneN++
			}
			if ok && got == projEnv {
				laneOK += oneIf(accepted[id])
			} else if ok {
				wrongLane++
			}
			continue
		}
		if accepted[id] {
			trunkN++
		}
		if ok && got == "" {
			trunkOK += oneIf(accepted[id])
		} else if ok {
			wrongTrunk++
		}
	}
	s.consumed = append(s.consumed,
		Consumed{Bus: bus, Side: label, Class: "proj-a-tagged", Want: projEnv, Orders: laneN, ByWant: laneOK, ByOther: wrongLane},
		Consumed{Bus: bus, Side: label, Class: "untagged and other-tag", Want: trunkConsumer, Orders: trunkN, ByWant: trunkOK, ByOther: wrongTrunk})
	add(fmt.Sprintf("%s lanes: proj-a-tagged %s %s requests handled by the proj-a lane", bus, label, what), laneN, laneOK, errString(err))
	add(fmt.Sprintf("%s lanes: untagged and other-tag %s %s requests handled by the trunk", bus, label, what), trunkN, trunkOK, "")
	add(fmt.Sprintf("%s lanes: %s %s requests handled by the other instance (must be none)", bus, label, what), 0, wrongLane+wrongTrunk, "")
	add(fmt.Sprintf("%s lanes: proj-a-tagged %s orders sent (the drill sends some)", bus, label), 1, oneIf(laneN > 0), "")
}

// redactURL hides the password of a URL for the report.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
