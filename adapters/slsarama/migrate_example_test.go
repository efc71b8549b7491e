package slsarama_test

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A broker migration's Kafka side through sarama: the wrapped producer is
// a migrate.Sender, so a marked message dual-written in phase 1 lands on
// the shadow twin of the mapped topic with the message id header.
func ExampleProducer_Sender() {
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(1, "order-events", "order-events_shadow"))
	defer cluster.Close()
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Migration: shadowlane.MigrationConfig{
		Phase: 1, Topics: map[string]string{"orders.created": "order-events"}}})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, _ := slsarama.New(slsarama.WithRuntime(rt), slsarama.WithShadowTopics("order-events"))
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	sp, err := sarama.NewSyncProducer(cluster.ListenAddrs(), cfg)
	if err != nil {
		panic(err)
	}
	defer sp.Close()

	var oldWrites []string // the old system's side, here a stand-in
	old := migrate.SenderFunc(func(_ context.Context, topic string, m migrate.Message) error {
		oldWrites = append(oldWrites, topic+" "+m.ID)
		return nil
	})
	prod, _ := migrate.NewProducer(rt, old, s.SyncProducer(sp).Sender())
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	err = prod.Send(ctx, "orders.created", &migrate.Message{ID: "order-1", Value: []byte("created")})
	fmt.Println(oldWrites, err)

	c, _ := sarama.NewConsumer(cluster.ListenAddrs(), sarama.NewConfig())
	defer c.Close()
	pc, _ := c.ConsumePartition("order-events_shadow", 0, sarama.OffsetOldest)
	defer pc.Close()
	m := <-pc.Messages()
	fmt.Println(m.Topic, slsarama.MessageID(m))
	// Output:
	// [orders.created order-1] <nil>
	// order-events_shadow order-1
}
