package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// A record produced under a load-test mark lands on the shadow twin of its
// topic with the mark in headers; a marked record for a topic without a
// shadow twin is refused.
func Example() {
	cluster, _ := kfake.NewCluster(kfake.SeedTopics(1, "orders", "orders_shadow", "payments"))
	defer cluster.Close()

	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "billing"}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, err := slkafka.New(slkafka.WithRuntime(rt), slkafka.WithShadowTopics("orders"))
	if err != nil {
		panic(err)
	}
	// Install the Shadow as a hook too, so no produce path of the client can
	// skip the rules.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.WithHooks(s))
	defer cl.Close()
	p, _ := s.Producer(cl)

	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})
	r := &kgo.Record{Topic: "orders", Value: []byte("order 1")}
	if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
		panic(err)
	}
	fmt.Println("produced to", r.Topic)

	err = p.ProduceSync(ctx, &kgo.Record{Topic: "payments"}).FirstErr()
	fmt.Println(errors.Is(err, shadow.ErrNoShadowTarget), err)

	// A consumer rebuilds the mark from the headers.
	rd, _ := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("orders_shadow"))
	defer rd.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
		hctx, err := s.Context(context.Background(), r)
		fmt.Println(string(r.Value), propagation.FromContext(hctx), err)
	})
	// Output:
	// produced to orders_shadow
	// true shadowlane: kafka "payments": no shadow target configured (no shadow topic configured for "payments") [run=run-7]
	// order 1 run=run-7 <nil>
}

// Shadow.Consumer runs the handler in the production group and, for groups
// named in WithShadowGroups, in the shadow group on the shadow topics.
func ExampleShadow_Consumer() {
	s, _ := slkafka.New(slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("billing"))
	c, _ := s.Consumer("billing", []string{"orders", "refunds"}, func(ctx context.Context, r *kgo.Record) error {
		// ctx carries the record's mark: Redis, SQL and HTTP calls made
		// with it are shadowed or routed like any request's.
		return nil
	})
	for _, p := range c.Plans() {
		fmt.Println(p.Group, p.Topics, p.Shadow)
	}
	// Output:
	// billing [orders refunds] false
	// billing_shadow [orders_shadow] true
}
