package slkafka_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// A broker migration's Kafka side: the Producer is a migrate.Sender, so a
// marked message dual-written to the mapped topic lands on its shadow
// twin, with the message id header that dual read de-duplicates by. (Here
// both sides are Kafka topics; across buses the other side's Sender comes
// from its adapter.)
func ExampleProducer_Sender() {
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(1, "orders", "orders_shadow", "orders-v2", "orders-v2_shadow"))
	defer cluster.Close()
	rt, err := shadowlane.New(shadowlane.Config{Service: "orders", Migration: shadowlane.MigrationConfig{
		Phase: 1, Topics: map[string]string{"orders": "orders-v2"}}})
	if err != nil {
		log.Fatal(err)
	}
	s, err := slkafka.New(slkafka.WithRuntime(rt), slkafka.WithShadowTopics("orders", "orders-v2"))
	if err != nil {
		log.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.WithHooks(s))
	defer cl.Close()
	p, _ := s.Producer(cl)
	prod, _ := migrate.NewProducer(rt, p.Sender(), p.Sender()) // rt: the phase, read per send

	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	_ = prod.Send(ctx, "orders", &migrate.Message{ID: "order-1", Value: []byte("created")})

	rd, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("orders_shadow", "orders-v2_shadow"))
	defer rd.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := map[string]string{}
	for len(seen) < 2 && pctx.Err() == nil {
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[r.Topic] = slkafka.MessageID(r) })
	}
	fmt.Println(seen["orders_shadow"], seen["orders-v2_shadow"])
	// Output:
	// order-1 order-1
}
