package slkafka_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
)

// On a loopback cluster (kfake): the consumer counts each marked record it
// hands to its handler as an entry "kafka:<topic>" of the run, with the
// group as the route, and a handler's final failure as "kafka handler";
// the producer counts a marked record it fails to produce as "kafka
// publish". Production records, failing or not, leave no evidence.
func TestRunEvidence(t *testing.T) {
	addrs := newCluster(t)
	rt, err := shadowlane.New(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	var refused atomic.Int64
	s := newShadow(t, slkafka.WithRuntime(rt), slkafka.WithShadowTopics("orders", "ghost"), slkafka.WithShadowGroups("svc"),
		slkafka.WithRetry(2, 0, 0),
		slkafka.WithRefused(func(context.Context, *kgo.Record, error) error { refused.Add(1); return nil }))
	p, err := s.Producer(newClient(t, addrs, kgo.RecordDeliveryTimeout(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	for _, v := range []string{"l1", "l2", "l3", "lfail1", "lfail2"} {
		if err := p.ProduceSync(marked("kafka-r1", ""), &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"p1", "pfail"} {
		if err := p.ProduceSync(bg, &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// ghost_shadow does not exist on the cluster: the record times out.
	if err := p.ProduceSync(marked("kafka-r1", ""), &kgo.Record{Topic: "ghost", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	failed := make(chan error, 1)
	p.Produce(marked("kafka-r1", ""), &kgo.Record{Topic: "ghost", Value: []byte("y")}, func(_ *kgo.Record, err error) { failed <- err })
	if err := <-failed; err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	if err := p.ProduceSync(marked("kafka-r1", ""), &kgo.Record{Topic: "payments", Value: []byte("z")}).FirstErr(); err == nil {
		t.Fatal("a topic without a shadow twin was produced to") // a refusal: a decision, not an error
	}

	var handled atomic.Int64
	c, err := s.Consumer("svc", []string{"orders"}, func(ctx context.Context, r *kgo.Record) error {
		handled.Add(1)
		if strings.Contains(string(r.Value), "fail") {
			return errors.New("handler bug")
		}
		return nil
	}, kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	deadline := time.Now().Add(20 * time.Second)
	for refused.Load() < 3 || handled.Load() < 10 { // 4 records that succeed, 3 that fail twice
		if time.Now().After(deadline) {
			t.Fatalf("handled %d calls, refused %d", handled.Load(), refused.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ev := rt.RunStatus("kafka-r1")
	if want := []shadowlane.RunEntry{{Entry: "kafka:orders", Route: "svc", Marked: 5}}; !slices.Equal(ev.Entries, want) {
		t.Fatalf("entries %+v", ev.Entries)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "kafka handler", N: 2}, {Reason: "kafka publish", N: 2}}; !slices.Equal(ev.Errors, want) {
		t.Fatalf("errors %+v", ev.Errors)
	}
	if len(rt.Runs()) != 1 {
		t.Fatalf("runs %q", rt.Runs())
	}
}
