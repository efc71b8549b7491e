package slkafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// Sender returns p as one side of a broker migration (package
// shadow/bus/migrate): the topic is the production topic, the message id
// travels in the [migrate.HeaderID] header, and the record goes through
// [Producer.ProduceSync], so a marked context lands on the shadow topic
// (or is refused) by this adapter's own rule.
func (p *Producer) Sender() migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, topic string, m migrate.Message) error {
		r := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value}
		for k, v := range m.WireHeaders() {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		return p.ProduceSync(ctx, r).FirstErr()
	})
}

// MessageID returns the migration message id of r ("" when there is
// none); the header name is matched ignoring ASCII case.
func MessageID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if migrate.IsHeaderID(h.Key) {
			return string(h.Value)
		}
	}
	return ""
}

// Migrating wraps h for a consumer of side of a broker migration: rd
// decides from the phase in force and the record's message id whether h
// runs; a copy it skips or drops as a duplicate is committed without
// running h. Pass it to [Shadow.Consumer], so the shadow group's records
// go through rd too.
func Migrating(rd *migrate.Reader, side migrate.Side, h Handler) Handler {
	return migrate.Wrap(rd, side, MessageID, h)
}
