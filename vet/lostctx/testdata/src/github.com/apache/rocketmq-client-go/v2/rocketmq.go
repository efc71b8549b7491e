// Package rocketmq is a stub of rocketmq-client-go for the analyzer tests.
package rocketmq

import (
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

type Producer interface{ Start() error }
type TransactionProducer interface{ Start() error }
type PushConsumer interface{ Start() error }
type PullConsumer interface{ Start() error }
type TransactionListener interface{}

func NewProducer(opts ...producer.Option) (Producer, error) { return nil, nil }
func NewTransactionProducer(l TransactionListener, opts ...producer.Option) (TransactionProducer, error) {
	return nil, nil
}
func NewPushConsumer(opts ...consumer.Option) (PushConsumer, error) { return nil, nil }
func NewPullConsumer(opts ...consumer.Option) (PullConsumer, error) { return nil, nil }
