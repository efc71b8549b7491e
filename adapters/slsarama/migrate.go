package slsarama

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Sender returns p as one side of a broker migration (package
// shadow/bus/migrate): the topic is the production topic, the message's
// Key is the record key, the message id travels in the
// [migrate.HeaderID] header, and the send goes through
// [Producer.SendMessage], so a marked context lands on the shadow topic
// (or is refused) by this adapter's own rule.
func (p *Producer) Sender() migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, topic string, m migrate.Message) error {
		msg := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(m.Value)}
		if len(m.Key) > 0 {
			msg.Key = sarama.ByteEncoder(m.Key)
		}
		for k, v := range m.WireHeaders() {
			msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		_, _, err := p.SendMessage(ctx, msg)
		return err
	})
}

// MessageID returns the migration message id of msg ("" when there is
// none); the header name is matched ignoring ASCII case.
func MessageID(msg *sarama.ConsumerMessage) string {
	for _, h := range msg.Headers {
		if h != nil && migrate.IsHeaderID(string(h.Key)) {
			return string(h.Value)
		}
	}
	return ""
}

// Migrating wraps h for a consumer of side of a broker migration: rd
// decides from the phase in force and the message id whether h runs; a
// copy it skips or drops as a duplicate is marked consumed without
// running h. Pass it to [Shadow.Consumer], so the shadow group's
// messages go through rd too.
func Migrating(rd *migrate.Reader, side migrate.Side, h MessageHandler) MessageHandler {
	return migrate.Wrap(rd, side, MessageID, h)
}
