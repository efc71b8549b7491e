package slkafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeCluster starts a one-broker kfake cluster with topics of partitions
// partitions each, closed when the test ends (after the clean-ups
// registered later: the consumers').
func fakeCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// controlCommits has reply answer every offset commit of group for which
// when reports true (when is not asked about other groups' commits); kfake
// answers the others.
func controlCommits(c *kfake.Cluster, group string, when func(*kmsg.OffsetCommitRequest) bool, reply func(*kmsg.OffsetCommitRequest) (kmsg.Response, error)) {
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		oc := req.(*kmsg.OffsetCommitRequest)
		if oc.Group != group || !when(oc) {
			return nil, nil, false
		}
		resp, err := reply(oc)
		return resp, err, true
	})
}

// rejectCommit answers oc with GROUP_AUTHORIZATION_FAILED on every
// partition it commits: nothing is committed.
func rejectCommit(oc *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	resp := oc.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range oc.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = 30 // GROUP_AUTHORIZATION_FAILED
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
