// Package nats is a stub of github.com/nats-io/nats.go for the analyzer tests.
package nats

import (
	"context"
	"time"
)

type Msg struct {
	Subject string
	Data    []byte
}

type Conn struct{}

func Connect(url string) (*Conn, error)                                          { return &Conn{}, nil }
func (nc *Conn) Publish(subj string, data []byte) error                          { return nil }
func (nc *Conn) PublishMsg(m *Msg) error                                         { return nil }
func (nc *Conn) PublishRequest(subj, reply string, data []byte) error            { return nil }
func (nc *Conn) Request(subj string, data []byte, t time.Duration) (*Msg, error) { return nil, nil }
func (nc *Conn) RequestMsgWithContext(ctx context.Context, m *Msg) (*Msg, error) { return nil, nil }
func (nc *Conn) Flush() error                                                    { return nil }
func (nc *Conn) JetStream() (JetStreamContext, error)                            { return nil, nil }

type PubAck struct{}

// JetStream is the legacy JetStream publishing interface.
type JetStream interface {
	Publish(subj string, data []byte) (*PubAck, error)
	PublishMsg(m *Msg) (*PubAck, error)
}

type JetStreamContext interface {
	JetStream
	StreamNames() <-chan string
}
