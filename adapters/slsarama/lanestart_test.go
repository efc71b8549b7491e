package slsarama_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/envtag"
)

// A lane that stops before it handled anything and restarts resumes where
// it first started: what was produced for it meanwhile (which the trunk
// skipped as the lane's) is handled by the lane, not skipped by a second
// start at the newest offset; what came before the lane first started is
// not (the trunk's).
func TestLaneRestartKeepsItsStart(t *testing.T) {
	addrs := newCluster(t)
	sp := syncProducer(t, addrs, config())
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	lane := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithEnv("proj-a"), slsarama.WithLanes(&lanes))
	p := lane.SyncProducer(sp)
	envA := marked("", "proj-a")
	send := func(v string) {
		if _, _, err := p.SendMessage(envA, &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		send(fmt.Sprintf("before-%d", i))
	}
	var mu sync.Mutex
	got := map[string]int{}
	h := func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		mu.Lock()
		got[string(msg.Value)]++
		mu.Unlock()
		return nil
	}
	run := func(until func() bool) {
		c, err := lane.Consumer(addrs, config(), "svc", []string{"orders"}, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := runUntil(t, c, until); err != nil {
			t.Fatal(err)
		}
	}
	// First start: it joins and stops without a message to handle.
	start := time.Now()
	run(func() bool { return time.Since(start) > 2*time.Second })
	for i := range 5 {
		send(fmt.Sprintf("while-down-%d", i))
	}
	run(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["while-down-4"] > 0
	})
	mu.Lock()
	defer mu.Unlock()
	for i := range 5 {
		if n := got[fmt.Sprintf("while-down-%d", i)]; n != 1 {
			t.Errorf("while-down-%d handled %d times by the restarted lane, want 1", i, n)
		}
		if n := got[fmt.Sprintf("before-%d", i)]; n != 0 {
			t.Errorf("before-%d (before the lane first started) handled by the lane", i)
		}
	}
}
