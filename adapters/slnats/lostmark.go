package slnats

import (
	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]), run by every publish and request of [Conn]
// and [JetStream] that is unmarked: one whose subject or header values
// (mark headers aside) look like load-test data is refused with a
// [*shadow.Error] wrapping [shadow.ErrLostMark], or only reported with
// testData.action: alert, counted under "nats" with the first token of the
// subject. Message data is not read: testData has no rule for message
// bodies. td is [Shadow.testData], checked by the caller: without testData
// rules the guard costs one pointer load, inline.
func (s *Shadow) lostMark(td *shadowlane.TestData, subj string, h natsgo.Header) error {
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
	return shadowlane.OrDefault(s.c.rt).LostMark(Store, metricTarget(s, subj), rule)
}

// testData is the lost-mark guard's matcher of the adapter's runtime, nil
// when testData is not configured (inlined at the call).
func (s *Shadow) testData() *shadowlane.TestData { return shadowlane.OrDefault(s.c.rt).TestData() }
