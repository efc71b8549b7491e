package slsarama_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// Prepare a sarama message under the mark of a context: a marked message
// moves to the shadow topic with the mark headers.
func ExampleShadow_Prepare() {
	rt, err := shadowlane.Init(shadowlane.WithConfig(shadowlane.Config{Service: "billing"}))
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	s, err := slsarama.New(slsarama.WithRuntime(rt), slsarama.WithShadowTopics("orders"))
	if err != nil {
		panic(err)
	}
	ctx := propagation.With(context.Background(), propagation.Mark{Run: "run-7"})

	msg := &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("order 1")}
	if err := s.Prepare(ctx, msg); err != nil {
		panic(err)
	}
	fmt.Println(msg.Topic, string(msg.Headers[0].Key), string(msg.Headers[0].Value))

	err = s.Prepare(ctx, &sarama.ProducerMessage{Topic: "payments"})
	fmt.Println(errors.Is(err, shadow.ErrNoShadowTarget))
	fmt.Println(s.ShadowGroup("billing"), s.ShadowTopics("orders", "payments"))
	// Output:
	// orders_shadow X-Shadowlane-Run run-7
	// true
	// billing_shadow [orders_shadow]
}

// A consumer runner: the shadow group runs beside the production group
// only for the groups named in WithShadowGroups.
func ExampleShadow_Consumer() {
	s, _ := slsarama.New(slsarama.WithShadowTopics("orders"), slsarama.WithShadowGroups("billing"))
	h := func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		// propagation.FromContext(ctx) is the message's mark.
		return nil
	}
	brokers := []string{"127.0.0.1:9092"}
	for _, group := range []string{"billing", "audit"} {
		c, err := s.Consumer(brokers, sarama.NewConfig(), group, []string{"orders", "payments"}, h)
		if err != nil {
			panic(err)
		}
		for _, p := range c.Plans() {
			fmt.Println(p.Group, p.Topics, p.Shadow)
		}
	}
	// c.Run(ctx) joins the groups and consumes until ctx is done.

	// Output:
	// billing [orders payments] false
	// billing_shadow [orders_shadow] true
	// audit [orders payments] false
}
