package slrocketmq

import (
	"context"
	"fmt"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Sender returns p (a producer from [Shadow.NewProducer], so the
// producer interceptor applies its rule: a marked context lands on the
// shadow topic, or is refused) as one side of a broker migration (package
// shadow/bus/migrate): the topic is the production topic, the message's
// Key becomes the message keys, the message id travels in the
// [migrate.HeaderID] property, and the send is synchronous; a send whose
// status is not SEND_OK is an error.
func Sender(p rocketmq.Producer) migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, topic string, m migrate.Message) error {
		msg := primitive.NewMessage(topic, m.Value)
		for k, v := range m.WireHeaders() {
			msg.WithProperty(k, v)
		}
		if len(m.Key) > 0 {
			msg.WithKeys([]string{string(m.Key)})
		}
		res, err := p.SendSync(ctx, msg)
		if err != nil {
			return err
		}
		if res.Status != primitive.SendOK {
			return fmt.Errorf("slrocketmq: send to %q: status %d", topic, res.Status)
		}
		return nil
	})
}

// MessageID returns the migration message id of m ("" when there is
// none); the property name is matched ignoring ASCII case.
func MessageID(m *primitive.MessageExt) string {
	if v := m.GetProperty(migrate.HeaderID); v != "" {
		return v
	}
	for k, v := range m.GetProperties() {
		if migrate.IsHeaderID(k) {
			return v
		}
	}
	return ""
}

// Migrating wraps h for a consumer of side of a broker migration: rd
// decides, message by message, from the phase in force and the message
// id whether h gets it; h is called with the messages to handle (not at
// all when there are none, and the batch is consumed). When h fails (an
// error or a result other than ConsumeSuccess) its messages' ids are
// forgotten, so their redelivery is handled. Pass it to
// [PushConsumer.Subscribe], so the shadow consumer's messages go through
// rd too.
func Migrating(rd *migrate.Reader, side migrate.Side, h Handler) Handler {
	return func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		take := make([]*primitive.MessageExt, 0, len(msgs))
		for _, m := range msgs {
			if rd.Begin(side, MessageID(m)) == migrate.Handle {
				take = append(take, m)
			}
		}
		if len(take) == 0 {
			return consumer.ConsumeSuccess, nil
		}
		res, err := h(ctx, take...)
		ok := err == nil && res == consumer.ConsumeSuccess
		for _, m := range take {
			rd.Done(MessageID(m), ok)
		}
		return res, err
	}
}
