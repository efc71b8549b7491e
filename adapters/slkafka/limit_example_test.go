package slkafka_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/propagation"
)

func ExampleNewProduceLimiter() {
	c, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "orders_shadow"))
	defer c.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	defer cl.Close()
	s, _ := slkafka.New(slkafka.WithShadowTopics("orders"))
	p, _ := s.Producer(cl)

	l := limiter.New() // or rt.Limiter(), with rules from the "limits:" config
	l.SetRules([]limiter.Rule{{Resource: "kafka:*", Class: limiter.ClassLoadTest, QPS: 1, Burst: 1}})
	pl := slkafka.NewProduceLimiter(slkafka.WithLimiter(l))

	loadTest := propagation.With(context.Background(), propagation.Mark{Run: "drill-1"})
	fmt.Println(pl.ProduceSync(loadTest, p, &kgo.Record{Topic: "orders"}).FirstErr())
	err := pl.ProduceSync(loadTest, p, &kgo.Record{Topic: "orders"}).FirstErr()
	var be *limiter.BlockError
	if errors.As(err, &be) {
		fmt.Println("refused:", be.Resource, be.Reason)
	}
	fmt.Println(pl.ProduceSync(context.Background(), p, &kgo.Record{Topic: "orders"}).FirstErr())
	// Output:
	// <nil>
	// refused: kafka:orders qps
	// <nil>
}
