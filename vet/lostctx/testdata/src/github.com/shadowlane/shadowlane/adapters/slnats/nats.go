// Package slnats is a stub of the shadowlane nats adapter for the analyzer tests.
package slnats

import (
	"context"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type Shadow struct{}
type Conn struct{ nc *natsgo.Conn }
type JetStream struct{ js jetstream.JetStream }

func New() (*Shadow, error)                                   { return &Shadow{}, nil }
func (s *Shadow) Conn(nc *natsgo.Conn) *Conn                  { return &Conn{nc} }
func (s *Shadow) JetStream(js jetstream.JetStream) *JetStream { return &JetStream{js} }
func (c *Conn) Publish(ctx context.Context, subj string, b []byte) error {
	return c.nc.Publish(subj, b)
}
func (c *Conn) NATS() *natsgo.Conn { return c.nc }
func (j *JetStream) PublishMsg(ctx context.Context, m *natsgo.Msg) (*jetstream.PubAck, error) {
	return j.js.PublishMsg(ctx, m) // the adapter itself is not reported
}
