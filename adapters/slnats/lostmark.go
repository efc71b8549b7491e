package slnats

import (
	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]), run by every publish and request of [Conn]
// and [JetStream] that is unmarked: one whose subject or header values
// (mark headers aside) look like load-test data is refused with a
// [*shadow.Error] wrapping [shadow.ErrLostMark], or only reported with
// testData.action: alert, counted under "nats" with the first token of the
// subject. Message data is not read: testData has no rule for message
// bodies. Without testData rules it costs one pointer load.
func (s *Shadow) lostMark(m propagation.Mark, subj string, h natsgo.Header) error {
	if m.Run != "" {
		return nil
	}
	rt := shadowlane.OrDefault(s.c.rt)
	td := rt.TestData()
	if td == nil {
		return nil
	}
	rule, ok := td.Match(subj)
	for k, vs := range h {
		if ok {
			break
		}
		if bus.IsMarkHeader(k) {
			continue
		}
		for _, v := range vs {
			if rule, ok = td.MatchHeader(k, v); ok {
				break
			}
		}
	}
	if !ok {
		return nil
	}
	return rt.LostMark(Store, metricTarget(s, subj), rule)
}
