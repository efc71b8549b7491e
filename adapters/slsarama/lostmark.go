package slsarama

import (
	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
)

// seam is where the lost-mark guard runs.
type seam uint8

const (
	fromPrepare     seam = iota // Shadow.Prepare, for the app's own send
	fromWrapper                 // Producer.SendMessage
	fromInterceptor             // Shadow.OnSend
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]) for an unmarked message: a message whose key
// or header values (mark headers aside) look like load-test data is
// reported with [shadowlane.Runtime.LostMark], counted under "kafka" with
// the message's topic. The error is a [*shadow.Error] wrapping
// [shadow.ErrLostMark] when testData.action is refuse, nil when it is
// alert or nothing matched. Message values are not read (testData has no
// rule for bodies).
//
// Every seam runs it: [Producer.SendMessage] and [Shadow.Prepare] return
// the error; the interceptor ([Shadow.OnSend]) empties the topic, which
// sarama fails before sending. A refused message never reaches the next
// seam. With action alert the message goes on, and is counted once:
// OnSend skips a message the wrapper has alerted on while that send is in
// flight, and Prepare leaves alerts to the interceptor once it has run
// (before that, a message prepared and then sent through a producer with
// the interceptor is counted twice).
//
// td is [Shadow.testData], checked by the caller: without testData rules the
// guard costs one pointer load, inline.
func (s *Shadow) lostMark(td *shadowlane.TestData, msg *sarama.ProducerMessage, from seam) error {
	rule, ok := matchKey(td, msg.Key)
	for i := 0; !ok && i < len(msg.Headers); i++ {
		h := &msg.Headers[i]
		if isMarkHeader(h.Key) {
			continue
		}
		rule, ok = td.MatchHeaderBytes(string(h.Key), h.Value)
	}
	if !ok {
		return nil
	}
	if !td.Refuses() {
		switch from {
		case fromPrepare:
			if s.intercepting.Load() {
				return nil
			}
		case fromWrapper:
			s.alerted.Store(msg, struct{}{})
			s.pending.Add(1)
		case fromInterceptor:
			if _, dup := s.alerted.Load(msg); dup {
				return nil
			}
		}
	}
	return shadowlane.OrDefault(s.c.rt).LostMark(Store, msg.Topic, rule)
}

// testData is the lost-mark guard's matcher of the adapter's runtime, nil
// when testData is not configured (inlined at the call).
func (s *Shadow) testData() *shadowlane.TestData { return shadowlane.OrDefault(s.c.rt).TestData() }

// sent ends the wrapper's send of msg: it forgets msg if the wrapper
// alerted on it. One atomic load when nothing is pending.
func (s *Shadow) sent(msg *sarama.ProducerMessage) {
	if s.pending.Load() == 0 {
		return
	}
	if _, ok := s.alerted.LoadAndDelete(msg); ok {
		s.pending.Add(-1)
	}
}

// matchKey checks a message key: sarama's own encoders directly, any
// other encoder by its encoded bytes.
func matchKey(td *shadowlane.TestData, k sarama.Encoder) (string, bool) {
	switch k := k.(type) {
	case nil:
		return "", false
	case sarama.StringEncoder:
		return td.Match(string(k))
	case sarama.ByteEncoder:
		return td.MatchBytes(k)
	}
	b, err := k.Encode()
	if err != nil {
		return "", false
	}
	return td.MatchBytes(b)
}
