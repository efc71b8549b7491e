package slnats

import (
	"context"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Sender returns j as one side of a broker migration (package
// shadow/bus/migrate): the topic is the production subject, the message
// id travels in the [migrate.HeaderID] header, and the publish goes
// through [JetStream.PublishMsg], so a marked context lands on the shadow
// subject (or is refused) by this adapter's own rule.
func (j *JetStream) Sender() migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, subj string, m migrate.Message) error {
		msg := &natsgo.Msg{Subject: subj, Data: m.Value, Header: natsgo.Header{}}
		for k, v := range m.WireHeaders() {
			msg.Header.Set(k, v)
		}
		_, err := j.PublishMsg(ctx, msg)
		return err
	})
}

// MessageID returns the migration message id in h ("" when there is
// none); the header name is matched ignoring ASCII case.
func MessageID(h natsgo.Header) string {
	if v, ok := h[migrate.HeaderID]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && migrate.IsHeaderID(k) {
			return v[0]
		}
	}
	return ""
}

// Migrating wraps h for a consumer of side of a broker migration: r
// decides from the phase in force and the message id whether h runs; a
// copy it skips or drops as a duplicate is acknowledged without running h.
// Pass it to [Shadow.ConsumeJetStream], so the shadow consumer's copies go
// through r too.
func Migrating(r *migrate.Reader, side migrate.Side, h JSHandler) JSHandler {
	return migrate.Wrap(r, side, func(msg jetstream.Msg) string { return MessageID(msg.Headers()) }, h)
}
