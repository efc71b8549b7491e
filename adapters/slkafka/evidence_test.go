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

// A client that has the Shadow only as a hook (no Producer): a marked
// record that franz-go fails to produce counts once as "kafka publish",
// through the hook, whichever method produced it; a Producer over the
// same client leaves the counting to the hook (still once). Refusals and
// production failures count nothing.
func TestRunEvidenceThroughHook(t *testing.T) {
	addrs := newCluster(t)
	rt, err := shadowlane.New(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s := newShadow(t, slkafka.WithRuntime(rt), slkafka.WithShadowTopics("orders", "ghost"))
	cl := newClient(t, addrs, kgo.WithHooks(s), kgo.RecordDeliveryTimeout(time.Second))
	ctx := marked("kafka-hook-1", "")
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// ghost_shadow does not exist on the cluster: the records time out.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ghost", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	failed := make(chan error, 1)
	cl.Produce(ctx, &kgo.Record{Topic: "ghost", Value: []byte("y")}, func(_ *kgo.Record, err error) { failed <- err })
	if err := <-failed; err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	// Refused by the hook (no shadow twin): a decision, not an error.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("z")}).FirstErr(); err == nil {
		t.Fatal("a topic without a shadow twin was produced to")
	}
	// Production, failing: no evidence.
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "nowhere", Value: []byte("p")}).FirstErr(); err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	if want := []shadowlane.RunErrorRows{{Reason: "kafka publish", N: 2}}; !slices.Equal(rt.RunStatus("kafka-hook-1").Errors, want) {
		t.Fatalf("raw client with the hook: errors %+v, want %+v", rt.RunStatus("kafka-hook-1").Errors, want)
	}

	// A Producer over the hooked client: each failure still counts once.
	p, err := s.Producer(cl)
	if err != nil {
		t.Fatal(err)
	}
	ctx2 := marked("kafka-hook-2", "")
	if err := p.ProduceSync(ctx2, &kgo.Record{Topic: "ghost", Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	p.Produce(ctx2, &kgo.Record{Topic: "ghost", Value: []byte("y")}, func(_ *kgo.Record, err error) { failed <- err })
	if err := <-failed; err == nil {
		t.Fatal("produced to a topic that does not exist")
	}
	if want := []shadowlane.RunErrorRows{{Reason: "kafka publish", N: 2}}; !slices.Equal(rt.RunStatus("kafka-hook-2").Errors, want) {
		t.Fatalf("Producer over the hooked client: errors %+v, want %+v", rt.RunStatus("kafka-hook-2").Errors, want)
	}
}

// The unbuffered hook costs nothing for a record produced successfully or
// a production record that failed.
func TestUnbufferedHookAllocs(t *testing.T) {
	s := newShadow(t, slkafka.WithShadowTopics("orders"))
	ok := &kgo.Record{Topic: "orders_shadow", Context: marked("kafka-hook-3", "")}
	prod := &kgo.Record{Topic: "orders", Context: context.Background()}
	fail := errors.New("broker down")
	if n := testing.AllocsPerRun(100, func() {
		s.OnProduceRecordUnbuffered(ok, nil)
		s.OnProduceRecordUnbuffered(prod, fail)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
