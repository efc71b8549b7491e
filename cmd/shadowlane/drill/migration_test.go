package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq/rmqfake"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Order events move between every pair of our buses (each bus is the old
// side once and the new side once): NATS JetStream (loopback 4222) ->
// Kafka (kfake) -> RabbitMQ (loopback 5672) -> RocketMQ (rmqfake) -> NATS,
// through the three phases switched by config reload while both sides'
// consumers run; both brokers are read back with plain clients (for
// RocketMQ, the fixture's store).
func TestMigrationBetweenBuses(t *testing.T) {
	rlog.SetLogLevel("error")
	buses := map[string]func(t *testing.T, prefix string) migBus{
		"nats": func(t *testing.T, prefix string) migBus {
			nc, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second))
			if err != nil {
				t.Skipf("no NATS on 127.0.0.1:4222: %v", err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			return newNATSBus(js, prefix)
		},
		"kafka": func(t *testing.T, prefix string) migBus {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(kc.Close)
			return newKafkaBus(kc.ListenAddrs(), prefix)
		},
		"amqp": func(t *testing.T, prefix string) migBus {
			url := "amqp://guest:guest@127.0.0.1:5672/"
			c, err := amqp091.Dial(url)
			if err != nil {
				t.Skipf("no RabbitMQ on 127.0.0.1:5672: %v", err)
			}
			c.Close()
			return newAMQPBus(url, prefix)
		},
		"rocketmq": func(t *testing.T, prefix string) migBus {
			srv, err := rmqfake.New(t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			srv.SetMaxHold(200 * time.Millisecond)
			t.Cleanup(func() { srv.Close() })
			return &rocketBus{srv: srv, topic: prefix + "_orders", group: prefix + "_mig"}
		},
	}
	for _, pair := range [][2]string{{"nats", "kafka"}, {"kafka", "amqp"}, {"amqp", "rocketmq"}, {"rocketmq", "nats"}} {
		t.Run(pair[0]+"-to-"+pair[1], func(t *testing.T) {
			prefix := "mig15" + randHex(3)
			old, nw := buses[pair[0]](t, prefix+"o"), buses[pair[1]](t, prefix+"n")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, invs, err := runMigration(ctx, migrationSetup{old: old, new: nw, prefix: prefix,
				dir: t.TempDir(), perPhase: 12, run: "mig15-run", env: "proj-a", logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Error != "" {
				t.Errorf("scenario: %s", rep.Error)
			}
			for _, inv := range invs {
				if !inv.OK {
					t.Errorf("%s: expected %d, observed %d (%s)", inv.Name, inv.Expected, inv.Observed, inv.Detail)
				}
			}
			if len(invs) < 14 {
				t.Fatalf("only %d invariants", len(invs))
			}
			if st := rep.Reader; st.Skipped == 0 || st.Duplicates == 0 {
				t.Errorf("the phases did not exercise skip and de-duplication: %+v", st)
			}
			for _, b := range []migBus{old, nw} {
				if nb, ok := b.(*natsBus); ok {
					for _, st := range []string{nb.stream, nb.shStream} {
						if _, err := nb.js.Stream(ctx, st); !errors.Is(err, jetstream.ErrStreamNotFound) {
							t.Errorf("stream %s left behind: %v", st, err)
						}
					}
				}
			}
			t.Logf("%s -> %s: handled %v reader %+v targets %v", rep.From, rep.To, rep.Handled, rep.Reader, rep.Targets)
		})
	}
}

var rocketInstance atomic.Int64

// rocketBus: a RocketMQ topic on the rmqfake fixture, through
// adapters/slrocketmq and the real client; the read-back is the fixture's
// store (the broker side).
type rocketBus struct {
	srv                *rmqfake.Server
	topic, shTp, group string
	rs                 *slrocketmq.Shadow
	p                  rocketmq.Producer
	pc                 *slrocketmq.PushConsumer
}

func (b *rocketBus) instance() string {
	return fmt.Sprintf("%s-%d", b.group, rocketInstance.Add(1))
}

func (b *rocketBus) names() migNames {
	return migNames{kind: "rocketmq", name: b.topic, label: "rocketmq (rmqfake, topic " + b.topic + ")", prod: b.topic, shadow: b.shTp, shadowSource: b.shTp}
}

func (b *rocketBus) setup(_ context.Context, rt *shadowlane.Runtime) (err error) {
	b.shTp = shadow.DefaultTopic.Shadow(b.topic)
	b.srv.CreateTopic(b.topic, 2)
	b.srv.CreateTopic(b.shTp, 2)
	if b.rs, err = slrocketmq.New(slrocketmq.WithRuntime(rt), slrocketmq.WithShadowTopics(b.topic), slrocketmq.WithShadowGroups(b.group)); err != nil {
		return err
	}
	b.p, err = b.rs.NewProducer(producer.WithNameServer([]string{b.srv.Addr()}), producer.WithGroupName(b.group+"-pg"),
		producer.WithInstanceName(b.instance()), producer.WithRetry(0))
	if err != nil {
		return err
	}
	return b.p.Start()
}

func (b *rocketBus) sender() migrate.Sender { return slrocketmq.Sender(b.p) }

func (b *rocketBus) consume(_ context.Context, rd *migrate.Reader, side migrate.Side, saw func(string), h func(context.Context, string, []byte)) (err error) {
	b.pc, err = b.rs.NewPushConsumer(b.group, consumer.WithNameServer([]string{b.srv.Addr()}), consumer.WithInstance(b.instance()),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithConsumeGoroutineNums(4))
	if err != nil {
		return err
	}
	inner := slrocketmq.Migrating(rd, side, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			h(ctx, m.Topic, m.Body)
		}
		return consumer.ConsumeSuccess, nil
	})
	err = b.pc.Subscribe(b.topic, consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			saw(slrocketmq.MessageID(m))
		}
		return inner(ctx, msgs...)
	})
	if err != nil {
		return err
	}
	return b.pc.Start()
}

func (b *rocketBus) readBack(_ context.Context, sh bool) ([]migCopy, error) {
	var out []migCopy
	for _, m := range b.srv.Messages(b.names().dest(sh)) {
		c := migCopy{bodyID: bodyID(m.Body)}
		for k, v := range m.Properties {
			switch {
			case strings.EqualFold(k, migrate.HeaderID):
				c.id = v
			case strings.EqualFold(k, bus.HeaderRun):
				c.run = v
			case strings.EqualFold(k, bus.HeaderEnv):
				c.env = v
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (b *rocketBus) close() {
	if b.pc != nil {
		b.pc.Shutdown()
	}
	if b.p != nil {
		b.p.Shutdown()
	}
}
