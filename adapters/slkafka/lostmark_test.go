package slkafka_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/shadow"
)

// TestLostMarkGuard: an unmarked record whose key or header is load-test
// data (testData:) is refused by the hook and never reaches the topic;
// read back with a plain consumer.
func TestLostMarkGuard(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.SeedTopics(1, "orders", "orders_shadow"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	rt, err := shadowlane.New(shadowlane.Config{TestData: shadowlane.TestDataConfig{
		Prefixes: []string{"lt-"}, Headers: []shadowlane.TestDataHeader{{Name: "x-test", Value: "*"}},
	}}, shadowlane.WithoutConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithRuntime(rt))
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.WithHooks(s))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i, r := range []*kgo.Record{
		{Topic: "orders", Key: []byte("user:lt-1"), Value: []byte("v")},
		{Topic: "orders", Key: []byte("user:1"), Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "X-Test", Value: []byte("1")}}},
	} {
		err := slkafka.ProduceError(r, cl.ProduceSync(ctx, r).FirstErr())
		if !errors.Is(err, shadow.ErrLostMark) {
			t.Errorf("record %d: err = %v, want ErrLostMark", i, err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("user:2"), Value: []byte("p")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fs := rd.PollRecords(ctx, 10)
	if n := len(fs.Records()); n != 1 || string(fs.Records()[0].Key) != "user:2" {
		t.Fatalf("topic holds %d records, want only user:2", n)
	}
	if got := rt.Stats().LostMarks["kafka"]; got != 2 {
		t.Fatalf("LostMarks = %v", rt.Stats().LostMarks)
	}
}
