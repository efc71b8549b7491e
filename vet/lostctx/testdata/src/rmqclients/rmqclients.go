package rmqclients

import (
	"context"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
)

// Producers and push consumers built with the client itself, without the
// adapter's interceptor: a marked message is sent to the production topic,
// a consumed one loses its mark.
func unwired() {
	p, _ := rocketmq.NewProducer(producer.WithNameServer([]string{"ns:9876"})) // want `rocketmq.NewProducer client without shadowlane wiring`
	_ = p
	tp, _ := rocketmq.NewTransactionProducer(nil) // want `rocketmq.NewTransactionProducer client without shadowlane wiring`
	_ = tp
	c, _ := rocketmq.NewPushConsumer(consumer.WithGroupName("billing")) // want `rocketmq.NewPushConsumer client without shadowlane wiring`
	_ = c
	// an interceptor, but not shadowlane's
	p2, _ := rocketmq.NewProducer(producer.WithInterceptor(logging)) // want `rocketmq.NewProducer client without shadowlane wiring`
	_ = p2
	// the consumer interceptor on a producer option does not count
	c2, _ := rocketmq.NewPushConsumer(consumer.WithInterceptor(logging, audit())) // want `rocketmq.NewPushConsumer client without shadowlane wiring`
	_ = c2
}

func logging(ctx context.Context, req, reply any, next primitive.Invoker) error {
	return next(ctx, req, reply)
}

func audit() primitive.Interceptor { return logging }

// Look-alikes: wired through the adapter, or options the analyzer cannot
// see.
func wired(opts []producer.Option, copts []consumer.Option) {
	s, _ := slrocketmq.New()
	p, _ := s.NewProducer(producer.WithNameServer([]string{"ns:9876"}))
	_ = p
	c, _ := s.NewPushConsumer("billing")
	_ = c
	p2, _ := rocketmq.NewProducer(producer.WithNameServer(nil), producer.WithInterceptor(logging, s.ProducerInterceptor()))
	_ = p2
	p3, _ := rocketmq.NewProducer(producer.WithInterceptor(slrocketmq.WiredProducerInterceptor()))
	_ = p3
	c2, _ := rocketmq.NewPushConsumer(consumer.WithGroupName("billing"), consumer.WithInterceptor(s.ConsumerInterceptor()))
	_ = c2
	p4, _ := rocketmq.NewProducer(opts...) // options we cannot see are trusted
	_ = p4
	c3, _ := rocketmq.NewPushConsumer(copts...)
	_ = c3
	// a pull consumer's interceptors run after the fact: the adapter's
	// Decide is per message, which the analyzer cannot see; not reported
	pc, _ := rocketmq.NewPullConsumer(consumer.WithGroupName("billing"))
	_ = pc
	//lostctx:ok a probe that sends to production on purpose
	probe, _ := rocketmq.NewProducer()
	_ = probe
}

// NewProducer of another package is not the client's.
type fake struct{}

func (fake) NewProducer(opts ...producer.Option) (rocketmq.Producer, error) { return nil, nil }

func lookalike() {
	_, _ = fake{}.NewProducer()
}
