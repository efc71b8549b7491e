package slsarama_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
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

// newShadow returns slsarama.New(opts...), failing t on an error.
func newShadow(t testing.TB, opts ...slsarama.Option) *slsarama.Shadow {
	t.Helper()
	s, err := slsarama.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncProducer returns a sarama sync producer on addrs, closed when the
// test ends.
func syncProducer(t testing.TB, addrs []string, cfg *sarama.Config) sarama.SyncProducer {
	t.Helper()
	sp, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

// consumeGroups consumes "orders" in s.Group("svc") and its shadow twins
// in s.ShadowGroup("svc") through s.GroupHandler("svc", h), with plain
// sarama consumer groups, until ctx is done; wait waits until both left.
func consumeGroups(t testing.TB, ctx context.Context, addrs []string, s *slsarama.Shadow, h slsarama.MessageHandler) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	for group, topics := range map[string][]string{s.Group("svc"): {"orders"}, s.ShadowGroup("svc"): s.ShadowTopics("orders")} {
		cg, err := sarama.NewConsumerGroup(addrs, group, config())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, topics, s.GroupHandler("svc", h)); err != nil && ctx.Err() == nil {
					t.Errorf("consume: %v", err)
					return
				}
			}
		})
	}
	return wg.Wait
}

// waitStable waits until group is stable with members members (its
// claims, and a new group's start at the newest offset, are then fixed).
func waitStable(t testing.TB, adm sarama.ClusterAdmin, group string, members int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		gs, err := adm.DescribeConsumerGroups([]string{group})
		if err == nil && len(gs) == 1 && gs[0].State == "Stable" && len(gs[0].Members) == members {
			time.Sleep(300 * time.Millisecond) // claims start after the join
			return
		}
		if time.Now().After(deadline) {
			state := fmt.Sprint(err)
			if err == nil && len(gs) == 1 {
				state = fmt.Sprintf("%s with %d members", gs[0].State, len(gs[0].Members))
			}
			t.Fatalf("group %s never became stable with %d members (%s)", group, members, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
