package slkafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/propagation"
)

// lostMark is the lost-mark guard of this exit (config testData:, see
// [shadowlane.TestDataConfig]), run by the produce hook
// ([Shadow.OnProduceRecordBuffered]) on every unmarked record: a record
// whose key or header values look like load-test data is refused (its
// topic emptied, as for every refusal of the hook; [ProduceError] returns
// the [*shadow.Error] wrapping [shadow.ErrLostMark]) or only reported with
// testData.action: alert, counted under "kafka". Record values are not
// read. Without testData rules it costs one pointer load.
func (s *Shadow) lostMark(m propagation.Mark, r *kgo.Record) bool {
	if m.Run != "" {
		return false
	}
	rt := shadowlane.OrDefault(s.c.rt)
	td := rt.TestData()
	if td == nil {
		return false
	}
	rule, ok := td.MatchBytes(r.Key)
	for i := 0; !ok && i < len(r.Headers); i++ {
		rule, ok = td.MatchHeaderBytes(r.Headers[i].Key, r.Headers[i].Value)
	}
	if !ok {
		return false
	}
	err := rt.LostMark(Store, r.Topic, rule)
	if err == nil {
		return false
	}
	r.Topic = ""
	parent := r.Context
	if parent == nil {
		parent = context.Background()
	}
	r.Context = context.WithValue(parent, refusedKey{}, err)
	return true
}
