package slamqp

import (
	"context"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Sender returns c as one side of a broker migration (package
// shadow/bus/migrate): the topic names an exchange (the map's names are
// exchanges on this side), the message's Key is the routing key, the
// message id travels in the [migrate.HeaderID] header, and the publish
// (mandatory, persistent) goes through [Channel.PublishWithContext], so a
// marked context lands on the shadow exchange (or is refused) by this
// adapter's own rule. Use a Shadow built with [WithConfirms] so that a
// message the broker did not take (or could not route) is an error, not
// a silent loss.
func (c *Channel) Sender() migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, exchange string, m migrate.Message) error {
		h := amqp091.Table{}
		for k, v := range m.WireHeaders() {
			h[k] = v
		}
		return c.PublishWithContext(ctx, exchange, string(m.Key), true, false,
			amqp091.Publishing{Headers: h, Body: m.Value, DeliveryMode: amqp091.Persistent})
	})
}

// MessageID returns the migration message id of d ("" when there is
// none); the header name is matched ignoring ASCII case.
func MessageID(d *amqp091.Delivery) string {
	for k, v := range d.Headers {
		if migrate.IsHeaderID(k) {
			switch s := v.(type) {
			case string:
				return s
			case []byte:
				return string(s)
			}
		}
	}
	return ""
}

// Migrating wraps h for a consumer of side of a broker migration: rd
// decides from the phase in force and the message id whether h runs; a
// copy it skips or drops as a duplicate is acknowledged without running h.
// Pass it to [Channel.Consume], so the shadow queue's copies go through rd
// too.
func Migrating(rd *migrate.Reader, side migrate.Side, h Handler) Handler {
	return migrate.Wrap(rd, side, MessageID, h)
}
