package slamqp

import (
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]), run by [Shadow.Prepare] (and so by every
// publish of [Channel]) on every unmarked publish: one whose routing key,
// message id, correlation id or header values (mark headers aside; nested
// tables and arrays too) look like load-test data is refused with a
// [*shadow.Error] wrapping [shadow.ErrLostMark], or only reported with
// testData.action: alert, counted under "amqp" with the exchange (the
// queue for the default exchange). The body is not read: testData has no
// rule for message bodies. td is [Shadow.testData], checked by the caller:
// without testData rules the guard costs one pointer load, inline.
func (s *Shadow) lostMark(td *shadowlane.TestData, exchange, key string, msg *amqp091.Publishing) error {
	rule, ok := td.Match(key)
	if !ok {
		rule, ok = td.Match(msg.MessageId)
	}
	if !ok {
		rule, ok = td.Match(msg.CorrelationId)
	}
	if !ok {
		rule, ok = matchTable(td, msg.Headers, 0)
	}
	if !ok {
		return nil
	}
	target := exchange
	if exchange == "" {
		target = key
	}
	return shadowlane.OrDefault(s.c.rt).LostMark(Store, target, rule)
}

// testData is the lost-mark guard's matcher of the adapter's runtime, nil
// when testData is not configured (inlined at the call).
func (s *Shadow) testData() *shadowlane.TestData { return shadowlane.OrDefault(s.c.rt).TestData() }

// maxTableDepth bounds the walk through nested header tables.
const maxTableDepth = 8

func matchTable(td *shadowlane.TestData, t amqp091.Table, depth int) (string, bool) {
	for k, v := range t {
		if depth == 0 && bus.IsMarkHeader(k) {
			continue
		}
		if rule, ok := matchField(td, k, v, depth); ok {
			return rule, true
		}
	}
	return "", false
}

func matchField(td *shadowlane.TestData, k string, v any, depth int) (string, bool) {
	switch x := v.(type) {
	case string:
		return td.MatchHeader(k, x)
	case []byte:
		return td.MatchHeader(k, string(x))
	case amqp091.Table:
		if depth < maxTableDepth {
			return matchTable(td, x, depth+1)
		}
	case []any:
		if depth < maxTableDepth {
			for _, e := range x {
				if rule, ok := matchField(td, k, e, depth+1); ok {
					return rule, true
				}
			}
		}
	default:
		return td.MatchValue(v)
	}
	return "", false
}
