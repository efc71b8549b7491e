package clients

import (
	"context"

	"github.com/IBM/sarama"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	slnats "github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/adapters/slredis"
	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
)

type app struct {
	rdb *redis.Client
}

func unwired() {
	r := redis.NewClient(&redis.Options{}) // want `redis.NewClient client without shadowlane wiring`
	_ = r
	redis.NewClusterClient(&redis.ClusterOptions{})   // want `redis.NewClusterClient client without shadowlane wiring`
	redis.NewRing(&redis.RingOptions{})               // want `redis.NewRing client without shadowlane wiring`
	cl, _ := kgo.NewClient(kgo.SeedBrokers("k:9092")) // want `kgo.NewClient client without shadowlane wiring`
	_ = cl
	p, _ := sarama.NewSyncProducer(nil, sarama.NewConfig()) // want `sarama.NewSyncProducer client without shadowlane wiring`
	_ = p
	var other struct{ h redis.Hook }
	r2 := redis.NewClient(&redis.Options{}) // want `redis.NewClient client without shadowlane wiring`
	r.AddHook(other.h)                      // a hook that is not shadowlane's does not wire r
	_ = r2
}

func wired() error {
	r := redis.NewClient(&redis.Options{})
	slredis.Instrument(r)
	r2 := redis.NewClient(&redis.Options{})
	r2.AddHook(slredis.NewHook())
	slredis.Instrument(redis.NewRing(&redis.RingOptions{}))

	a := &app{}
	a.rdb = redis.NewClient(&redis.Options{})
	slredis.Instrument(a.rdb)

	s, _ := slkafka.New()
	cl, _ := kgo.NewClient(kgo.SeedBrokers("k:9092"), kgo.WithHooks(s))
	_ = cl
	cl2, _ := kgo.NewClient(kgo.SeedBrokers("k:9092"))
	if _, err := s.Producer(cl2); err != nil {
		return err
	}
	var opts []kgo.Opt
	kgo.NewClient(opts...) // options we cannot see are trusted

	ss, _ := slsarama.New()
	p, _ := sarama.NewSyncProducer(nil, sarama.NewConfig())
	_ = ss.SyncProducer(p)
	cfg := sarama.NewConfig()
	cfg.Producer.Interceptors = []sarama.ProducerInterceptor{ss}
	ap, _ := sarama.NewAsyncProducer(nil, cfg)
	_ = ap
	return nil
}

// An admin client (kadm) never carries a request's records.
func admin() {
	cl, _ := kgo.NewClient(kgo.SeedBrokers("k:9092"))
	defer cl.Close()
	kadm.NewClient(cl).DeleteTopics("t")
	_ = kadm.NewClient(nil)
}

// An admin client also used to produce is not admin-only.
func adminAndMore() {
	cl, _ := kgo.NewClient(kgo.SeedBrokers("k:9092")) // want `kgo.NewClient client without shadowlane wiring`
	kadm.NewClient(cl)
	use(cl)
}

func use(cl *kgo.Client) {}

// A deliberate exception carries a directive with its reason.
func probe() {
	//lostctx:ok a health probe reads the real store on purpose
	r := redis.NewClient(&redis.Options{})
	_ = r
	r2 := redis.NewClient(&redis.Options{}) //lostctx:ok same-line form
	_ = r2
}

// A raw NATS or JetStream publish has no hook in nats.go: a marked message
// would land on the production subject unmarked.
func rawNATS(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, legacy nats.JetStreamContext) {
	nc.Publish("orders", nil)                        // want `raw NATS publish \(nats.Conn.Publish\)`
	nc.PublishMsg(&nats.Msg{Subject: "orders"})      // want `raw NATS publish \(nats.Conn.PublishMsg\)`
	nc.Request("orders", nil, 0)                     // want `raw NATS publish \(nats.Conn.Request\)`
	js.PublishMsg(ctx, &nats.Msg{Subject: "orders"}) // want `raw NATS publish \(jetstream.Publisher.PublishMsg\)`
	js.Publish(ctx, "orders", nil)                   // want `raw NATS publish \(jetstream.Publisher.Publish\)`
	legacy.Publish("orders", nil)                    // want `raw NATS publish \(nats.JetStream.Publish\)`
	s, _ := slnats.New()
	s.Conn(nc).NATS().Publish("orders", nil) // want `raw NATS publish \(nats.Conn.Publish\)`
	js.Conn().Publish("orders", nil)         // want `raw NATS publish \(nats.Conn.Publish\)`
	_ = nc.Flush()
}

func wrappedNATS(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) {
	s, _ := slnats.New()
	_ = s.Conn(nc).Publish(ctx, "orders", nil)
	_, _ = s.JetStream(js).PublishMsg(ctx, &nats.Msg{Subject: "orders"})
	//lostctx:ok a probe that publishes to production on purpose
	_ = nc.Publish("health", nil)
}
