// Package jetstream is a stub of github.com/nats-io/nats.go/jetstream for the analyzer tests.
package jetstream

import (
	"context"

	"github.com/nats-io/nats.go"
)

type PubAck struct{}

type Publisher interface {
	Publish(ctx context.Context, subj string, data []byte) (*PubAck, error)
	PublishMsg(ctx context.Context, msg *nats.Msg) (*PubAck, error)
	PublishMsgAsync(msg *nats.Msg) (any, error)
}

type JetStream interface {
	Publisher
	Conn() *nats.Conn
}

func New(nc *nats.Conn) (JetStream, error) { return nil, nil }
