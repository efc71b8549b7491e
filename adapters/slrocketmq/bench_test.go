package slrocketmq_test

import (
	"context"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/propagation"
)

func benchMsg() *primitive.Message {
	m := primitive.NewMessage("orders", []byte("body"))
	m.WithProperty("KEYS", "order-1")
	m.WithProperty("TAGS", "created")
	m.WithProperty("UNIQ_KEY", "0A0B0C0D")
	return m
}

// The producer interceptor's cost per message, without the client's send.
func BenchmarkProducerInterceptor(b *testing.B) {
	s, err := slrocketmq.New(slrocketmq.WithShadowTopics("orders"))
	if err != nil {
		b.Fatal(err)
	}
	icp := s.ProducerInterceptor()
	next := func(context.Context, any, any) error { return nil }
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"unmarked", context.Background()},
		{"marked", propagation.With(context.Background(), propagation.Mark{Run: "r1", Env: "proj-a"})},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := benchMsg()
			b.ReportAllocs()
			for b.Loop() {
				m.Topic = "orders"
				if err := icp(c.ctx, m, nil, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The consumer interceptor's cost per consumed production message.
func BenchmarkConsumerInterceptor(b *testing.B) {
	s, err := slrocketmq.New(slrocketmq.WithShadowTopics("orders"))
	if err != nil {
		b.Fatal(err)
	}
	icp := s.ConsumerInterceptor()
	m := &primitive.MessageExt{Message: *benchMsg()}
	msgs := []*primitive.MessageExt{m}
	ctx := primitive.WithConsumerCtx(context.Background(), &primitive.ConsumeMessageContext{ConsumerGroup: "billing"})
	next := func(context.Context, any, any) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		var h consumer.ConsumeResultHolder
		if err := icp(ctx, msgs, &h, next); err != nil {
			b.Fatal(err)
		}
	}
}
