// Package slrocketmq is a stub of the shadowlane RocketMQ adapter for the analyzer tests.
package slrocketmq

import (
	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

type Shadow struct{}
type PushConsumer struct{}

func New() (*Shadow, error)                                                      { return &Shadow{}, nil }
func (s *Shadow) ProducerInterceptor() primitive.Interceptor                     { return nil }
func (s *Shadow) ConsumerInterceptor() primitive.Interceptor                     { return nil }
func (s *Shadow) NewProducer(opts ...producer.Option) (rocketmq.Producer, error) { return nil, nil }
func (s *Shadow) NewPushConsumer(g string, opts ...consumer.Option) (*PushConsumer, error) {
	return &PushConsumer{}, nil
}
func WiredProducerInterceptor() primitive.Interceptor { return nil }
