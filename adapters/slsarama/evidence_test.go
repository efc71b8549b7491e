package slsarama_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slsarama"
)

// On a loopback cluster (kfake): the group handler counts each marked
// message it hands to its handler as an entry "kafka:<topic>" of the run
// (route: the group) and a handler's final failure as "kafka handler";
// the producer counts a marked message it fails to send as "kafka
// publish". Production messages leave no evidence.
func TestRunEvidence(t *testing.T) {
	addrs := newCluster(t)
	rt, err := shadowlane.New(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var refused atomic.Int64
	s := newShadow(t, slsarama.WithRuntime(rt), slsarama.WithShadowTopics("orders", "ghost"), slsarama.WithRetry(2, 0, 0),
		slsarama.WithRefused(func(context.Context, *sarama.ConsumerMessage, error) error { refused.Add(1); return nil }))
	cfg := config()
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	sp := syncProducer(t, addrs, cfg)
	p := s.SyncProducer(sp)
	for _, v := range []string{"l1", "l2", "lfail1", "lfail2"} {
		if _, _, err := p.SendMessage(marked("sarama-r1", ""), &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"p1", "pfail"} {
		if _, _, err := p.SendMessage(context.Background(), &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatal(err)
		}
	}
	// ghost_shadow does not exist on the cluster.
	if _, _, err := p.SendMessage(marked("sarama-r1", ""), &sarama.ProducerMessage{Topic: "ghost", Value: sarama.StringEncoder("x")}); err == nil {
		t.Fatal("sent to a topic that does not exist")
	}
	if _, _, err := p.SendMessage(marked("sarama-r1", ""), &sarama.ProducerMessage{Topic: "payments", Value: sarama.StringEncoder("y")}); err == nil {
		t.Fatal("a topic without a shadow twin was sent to") // a refusal: a decision, not an error
	}

	var calls atomic.Int64
	h := func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		calls.Add(1)
		if strings.Contains(string(msg.Value), "fail") {
			return errors.New("handler bug")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wait := consumeGroups(t, ctx, addrs, s, h)
	for (refused.Load() < 3 || calls.Load() < 9) && ctx.Err() == nil { // 3 that succeed, 3 that fail twice
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wait()
	if refused.Load() != 3 || calls.Load() != 9 {
		t.Fatalf("refused %d, handler calls %d", refused.Load(), calls.Load())
	}
	ev := rt.RunStatus("sarama-r1")
	if want := []shadowlane.RunEntry{{Entry: "kafka:orders", Route: "svc", Marked: 4}}; !slices.Equal(ev.Entries, want) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "kafka handler", N: 2}, {Reason: "kafka publish", N: 1}}; !slices.Equal(ev.Errors, want) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
}
