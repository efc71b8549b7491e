package drill

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slamqp"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// migBus is one side of the migration scenario: a bus with one migrating
// production name, its shadow twin, the adapter's Sender and a consumer
// through migrate.Reader, and a plain read-back of what the broker holds.
type migBus interface {
	names() migNames
	setup(ctx context.Context, rt *shadowlane.Runtime) error
	sender() migrate.Sender
	// consume starts the consumers (production and shadow) of side; saw
	// is told every delivered copy's id, h gets the copies rd lets through.
	consume(ctx context.Context, rd *migrate.Reader, side migrate.Side, saw func(id string), h func(ctx context.Context, source string, body []byte)) error
	readBack(ctx context.Context, shadow bool) ([]migCopy, error)
	close()
}

// migNames is what the scenario and its report call a bus. The shadow
// names are known once setup has run.
type migNames struct {
	kind         string // "nats", "kafka", ...
	name         string // the production name the topic map names
	label        string // for the report
	prod, shadow string // where production and shadow copies land (stream, topic or exchange)
	shadowSource string // the source a shadow copy is handed to consume's h with
}

// dest is prod or, with sh, shadow.
func (n migNames) dest(sh bool) string {
	if sh {
		return n.shadow
	}
	return n.prod
}

// target is the production or shadow target, for the report.
func (n migNames) target(sh bool) string { return n.kind + " " + n.dest(sh) }

// isShadow tells whether consume's h got a copy from the shadow side.
func (n migNames) isShadow(source string) bool { return source == n.shadowSource }

// natsBus: a JetStream stream with one subject, through adapters/slnats.
type natsBus struct {
	js                     jetstream.JetStream
	prefix                 string
	ns                     *slnats.Shadow
	subj, stream, shStream string
	cons                   *slnats.Consumption
}

func newNATSBus(js jetstream.JetStream, prefix string) *natsBus {
	return &natsBus{js: js, prefix: prefix, subj: prefix + ".orders.events", stream: strings.ToUpper(prefix) + "_MIGORDERS"}
}

func (b *natsBus) names() migNames {
	return migNames{kind: "nats", name: b.subj, label: "nats jetstream (stream " + b.stream + ", subject " + b.subj + ")",
		prod: b.stream, shadow: b.shStream, shadowSource: shadow.DefaultSubject.Shadow(b.subj)}
}

func (b *natsBus) setup(ctx context.Context, rt *shadowlane.Runtime) (err error) {
	if b.ns, err = slnats.New(slnats.WithRuntime(rt), slnats.WithShadowSubjects(b.subj)); err != nil {
		return err
	}
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: b.stream, Subjects: []string{b.subj}}); err != nil {
		return err
	}
	if _, err := b.ns.CreateShadowStream(ctx, b.js, b.stream); err != nil {
		return err
	}
	b.shStream = b.ns.StreamName(b.stream)
	return nil
}

func (b *natsBus) sender() migrate.Sender { return b.ns.JetStream(b.js).Sender() }

func (b *natsBus) consume(ctx context.Context, rd *migrate.Reader, side migrate.Side, saw func(string), h func(context.Context, string, []byte)) (err error) {
	inner := slnats.Migrating(rd, side, func(ctx context.Context, msg jetstream.Msg) error {
		h(ctx, msg.Subject(), msg.Data())
		return nil
	})
	b.cons, err = b.ns.ConsumeJetStream(ctx, b.js, b.stream, jetstream.ConsumerConfig{Durable: b.prefix + "-mig", AckPolicy: jetstream.AckExplicitPolicy},
		func(ctx context.Context, msg jetstream.Msg) error {
			saw(slnats.MessageID(msg.Headers()))
			return inner(ctx, msg)
		})
	return err
}

func (b *natsBus) readBack(ctx context.Context, sh bool) ([]migCopy, error) {
	st, err := b.js.Stream(ctx, b.names().dest(sh))
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil, err
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []migCopy
	for uint64(len(out)) < info.State.Msgs && rctx.Err() == nil {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			h := m.Headers()
			out = append(out, migCopy{id: h.Get(migrate.HeaderID), bodyID: bodyID(m.Data()), run: h.Get(bus.HeaderRun), env: h.Get(bus.HeaderEnv)})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
	}
	return out, rctx.Err()
}

func (b *natsBus) close() {
	if b.cons != nil {
		b.cons.Stop()
	}
	//lostctx:ok clean-up after the scenario: the context may be done, and nothing here is marked
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.js.DeleteStream(cctx, b.stream)
	if b.shStream != "" {
		b.js.DeleteStream(cctx, b.shStream)
	}
}

// kafkaBus: a topic with two partitions, through adapters/slkafka.
type kafkaBus struct {
	seeds              []string
	topic, shTp, group string
	ks                 *slkafka.Shadow
	adm                *kadm.Client
	cl, kcl            *kgo.Client
	done               chan struct{}
}

func newKafkaBus(seeds []string, prefix string) *kafkaBus {
	return &kafkaBus{seeds: seeds, topic: prefix + "_order-events-v2", group: prefix + "_mig-ledger"}
}

func (b *kafkaBus) names() migNames {
	return migNames{kind: "kafka", name: b.topic, label: "kafka (topic " + b.topic + ")", prod: b.topic, shadow: b.shTp, shadowSource: b.shTp}
}

func (b *kafkaBus) setup(ctx context.Context, rt *shadowlane.Runtime) (err error) {
	if b.ks, err = slkafka.New(slkafka.WithRuntime(rt), slkafka.WithShadowTopics(b.topic), slkafka.WithShadowGroups(b.group)); err != nil {
		return err
	}
	b.shTp, _ = b.ks.ShadowTopic(b.topic)
	if b.cl, err = kgo.NewClient(kgo.SeedBrokers(b.seeds...)); err != nil {
		return err
	}
	b.adm = kadm.NewClient(b.cl)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := b.adm.CreateTopics(cctx, 2, -1, nil, b.topic, b.shTp); err != nil {
		return err
	}
	b.kcl, err = kgo.NewClient(kgo.SeedBrokers(b.seeds...), kgo.WithHooks(b.ks), kgo.ProducerLinger(0))
	return err
}

func (b *kafkaBus) sender() migrate.Sender {
	p, err := b.ks.Producer(b.kcl)
	if err != nil { // only with DefaultProduceTopicAlways, which we never set
		return migrate.SenderFunc(func(context.Context, string, migrate.Message) error { return err })
	}
	return p.Sender()
}

func (b *kafkaBus) consume(ctx context.Context, rd *migrate.Reader, side migrate.Side, saw func(string), h func(context.Context, string, []byte)) error {
	inner := slkafka.Migrating(rd, side, func(ctx context.Context, r *kgo.Record) error {
		h(ctx, r.Topic, r.Value)
		return nil
	})
	c, err := b.ks.Consumer(b.group, []string{b.topic}, func(ctx context.Context, r *kgo.Record) error {
		saw(slkafka.MessageID(r))
		return inner(ctx, r)
	}, kgo.SeedBrokers(b.seeds...))
	if err != nil {
		return err
	}
	b.done = make(chan struct{})
	go func() { defer close(b.done); _ = c.Run(ctx) }()
	return nil
}

func (b *kafkaBus) readBack(ctx context.Context, sh bool) ([]migCopy, error) {
	topic := b.names().dest(sh)
	ends, err := b.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	want := int64(0)
	offs := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		want += o.Offset
		offs[topic][o.Partition] = kgo.NewOffset().AtStart()
	})
	if want == 0 {
		return nil, nil
	}
	//lostctx:ok the drill reads the broker back with a plain client on purpose: verification must not go through shadowlane
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...), kgo.ConsumePartitions(offs))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []migCopy
	for int64(len(out)) < want && rctx.Err() == nil {
		rd.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
			c := migCopy{bodyID: bodyID(r.Value)}
			for _, h := range r.Headers {
				switch {
				case strings.EqualFold(h.Key, migrate.HeaderID):
					c.id = string(h.Value)
				case strings.EqualFold(h.Key, bus.HeaderRun):
					c.run = string(h.Value)
				case strings.EqualFold(h.Key, bus.HeaderEnv):
					c.env = string(h.Value)
				}
			}
			out = append(out, c)
		})
	}
	return out, rctx.Err()
}

func (b *kafkaBus) close() {
	if b.done != nil {
		<-b.done // the scenario cancelled the consumers' context
	}
	if b.kcl != nil {
		b.kcl.Close()
	}
	if b.adm != nil {
		//lostctx:ok clean-up after the scenario
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.adm.DeleteGroups(cctx, b.group, shadow.DefaultGroup.Shadow(b.group))
		b.adm.DeleteTopics(cctx, b.topic, b.shTp)
		b.cl.Close()
	}
}

// amqpBus: a topic exchange and its queue on RabbitMQ, through
// adapters/slamqp (with confirms); two plain audit queues bound to the
// exchange and its shadow twin keep a copy of everything routed there.
type amqpBus struct {
	url                      string
	exchange, queue, shadowX string
	shQueue                  string // the queue's shadow twin
	audit                    [2]string
	conn                     *amqp091.Connection
	as                       *slamqp.Shadow
	pub                      *slamqp.Channel
	done                     chan struct{}
}

func newAMQPBus(url, prefix string) *amqpBus {
	return &amqpBus{url: url, exchange: prefix + ".orders", queue: prefix + ".mig-ledger",
		audit: [2]string{prefix + ".audit", prefix + ".audit_sh"}}
}

func (b *amqpBus) names() migNames {
	return migNames{kind: "amqp", name: b.exchange, label: "rabbitmq (exchange " + b.exchange + ", queue " + b.queue + ")",
		prod: b.exchange, shadow: b.shadowX, shadowSource: b.shQueue}
}

func (b *amqpBus) setup(ctx context.Context, rt *shadowlane.Runtime) (err error) {
	if b.conn, err = amqp091.Dial(b.url); err != nil {
		return err
	}
	if b.as, err = slamqp.New(slamqp.WithRuntime(rt), slamqp.WithShadowExchanges(b.exchange), slamqp.WithShadowQueues(b.queue), slamqp.WithConfirms()); err != nil {
		return err
	}
	b.shadowX, b.shQueue = b.as.ShadowName(b.exchange), b.as.ShadowName(b.queue)
	ch, err := b.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	err = b.as.Declare(ch, slamqp.Topology{
		Exchanges: []slamqp.Exchange{{Name: b.exchange, Kind: "topic"}},
		Queues:    []slamqp.Queue{{Name: b.queue}},
		Bindings:  []slamqp.Binding{{Queue: b.queue, Exchange: b.exchange, Key: "#"}},
	})
	if err != nil {
		return err
	}
	for i, x := range []string{b.exchange, b.shadowX} {
		if _, err := ch.QueueDeclare(b.audit[i], false, false, false, false, nil); err != nil {
			return err
		}
		if err := ch.QueueBind(b.audit[i], "#", x, false, nil); err != nil {
			return err
		}
	}
	pch, err := b.conn.Channel()
	if err != nil {
		return err
	}
	b.pub = b.as.Channel(pch)
	return nil
}

func (b *amqpBus) sender() migrate.Sender {
	s := b.pub.Sender()
	return migrate.SenderFunc(func(ctx context.Context, exchange string, m migrate.Message) error {
		m.Key = []byte("order.created") // the routing key
		return s.Send(ctx, exchange, m)
	})
}

func (b *amqpBus) consume(ctx context.Context, rd *migrate.Reader, side migrate.Side, saw func(string), h func(context.Context, string, []byte)) error {
	ch, err := b.conn.Channel()
	if err != nil {
		return err
	}
	inner := slamqp.Migrating(rd, side, func(ctx context.Context, d *amqp091.Delivery) error {
		src := b.queue
		if d.Exchange == b.shadowX {
			src = b.shQueue
		}
		h(ctx, src, d.Body)
		return nil
	})
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		_ = b.as.Channel(ch).Consume(ctx, b.queue, func(ctx context.Context, d *amqp091.Delivery) error {
			saw(slamqp.MessageID(d))
			return inner(ctx, d)
		})
	}()
	return nil
}

func (b *amqpBus) readBack(_ context.Context, sh bool) ([]migCopy, error) {
	q := b.audit[0]
	if sh {
		q = b.audit[1]
	}
	ch, err := b.conn.Channel()
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	var out []migCopy
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil || !ok {
			return out, err
		}
		c := migCopy{id: slamqp.MessageID(&d), bodyID: bodyID(d.Body)}
		for k, v := range d.Headers {
			s, _ := v.(string)
			switch {
			case strings.EqualFold(k, bus.HeaderRun):
				c.run = s
			case strings.EqualFold(k, bus.HeaderEnv):
				c.env = s
			}
		}
		out = append(out, c)
	}
}

func (b *amqpBus) close() {
	if b.done != nil {
		<-b.done
	}
	if b.conn == nil {
		return
	}
	if ch, err := b.conn.Channel(); err == nil {
		for _, q := range []string{b.queue, b.shQueue, b.audit[0], b.audit[1]} {
			ch.QueueDelete(q, false, false, false)
		}
		for _, x := range []string{b.exchange, b.shadowX} {
			ch.ExchangeDelete(x, false, false)
		}
		ch.Close()
	}
	b.conn.Close()
}
