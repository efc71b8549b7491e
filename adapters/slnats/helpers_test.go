package slnats_test

import (
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/adapters/slnats"
)

// newShadow returns slnats.New(opts...), failing t on an error.
func newShadow(t testing.TB, opts ...slnats.Option) *slnats.Shadow {
	t.Helper()
	s, err := slnats.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jetStream returns a plain JetStream client on nc, failing t on an error.
func jetStream(t testing.TB, nc *natsgo.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
