package slsarama_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/IBM/sarama"

	"github.com/shadowlane/shadowlane"
	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// TestLostMarkGuard: unmarked messages whose key or headers are load-test
// data (testData:) are refused by the wrapper (typed error) and by the
// interceptor alone (raw SendMessage); none reaches the topic, read back
// with a plain consumer from kfake. Marked ones go to the shadow twin.
func TestLostMarkGuard(t *testing.T) {
	addrs := newCluster(t)
	rt := bustest.TestDataRuntime(t, "")
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithRuntime(rt))
	sp := syncProducer(t, addrs, config(s))
	p := s.SyncProducer(sp)
	bg := context.Background()
	lost := []*sarama.ProducerMessage{
		{Topic: "orders", Key: sarama.StringEncoder("cart:lt-1"), Value: sarama.StringEncoder("w-key")},
		{Topic: "orders", Key: sarama.ByteEncoder("user:9000000001"), Value: sarama.StringEncoder("w-bytes")},
		{Topic: "orders", Value: sarama.StringEncoder("w-header"), Headers: []sarama.RecordHeader{{Key: []byte("x-test"), Value: []byte("1")}}},
		{Topic: "orders", Value: sarama.StringEncoder("w-hvalue"), Headers: []sarama.RecordHeader{{Key: []byte("user"), Value: []byte("lt-7")}}},
	}
	for _, msg := range lost {
		_, _, err := p.SendMessage(bg, msg)
		var se *shadow.Error
		if !errors.Is(err, shadow.ErrLostMark) || !errors.As(err, &se) || se.Store != "kafka" {
			t.Errorf("wrapper, %s: err = %v, want a kafka *shadow.Error wrapping ErrLostMark", msg.Value, err)
		}
	}
	// the interceptor alone: the message fails in sarama, never sent
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("lt-2"), Value: sarama.StringEncoder("raw-key")}); err == nil {
		t.Error("raw send of a load-test key: no error")
	}
	// production data and marked load-test data pass
	if _, _, err := p.SendMessage(bg, &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("cart:42"), Value: sarama.StringEncoder("prod")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("cart:43"), Value: sarama.StringEncoder("raw-prod")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(marked("r1", ""), &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("cart:lt-1"), Value: sarama.StringEncoder("load")}); err != nil {
		t.Fatal(err)
	}
	if vals, _ := readAll(t, addrs, "orders"); !slices.Equal(vals, []string{"prod", "raw-prod"}) {
		t.Fatalf("orders holds %q, want only the production messages", vals)
	}
	if vals, _ := readAll(t, addrs, "orders_shadow"); !slices.Equal(vals, []string{"load"}) {
		t.Fatalf("orders_shadow holds %q", vals)
	}
	if got := rt.Stats().LostMarks["kafka"]; got != int64(len(lost))+1 {
		t.Fatalf("LostMarks = %v, want kafka %d", rt.Stats().LostMarks, len(lost)+1)
	}
}

// TestLostMarkAlert: with testData.action alert the message is sent and
// counted once, though it passes both the wrapper and the interceptor.
func TestLostMarkAlert(t *testing.T) {
	addrs := newCluster(t)
	rt := bustest.TestDataRuntime(t, "alert")
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithRuntime(rt))
	sp := syncProducer(t, addrs, config(s))
	p := s.SyncProducer(sp)
	for _, v := range []string{"a1", "a2", "a3"} {
		if _, _, err := p.SendMessage(context.Background(), &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("lt-" + v), Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
	}
	// the interceptor alone counts its own
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("lt-a4"), Value: sarama.StringEncoder("a4")}); err != nil {
		t.Fatal(err)
	}
	if got := rt.Stats().LostMarks["kafka"]; got != 4 {
		t.Fatalf("LostMarks = %v, want kafka 4 (each message once)", rt.Stats().LostMarks)
	}
	if vals, _ := readAll(t, addrs, "orders"); !slices.Equal(vals, []string{"a1", "a2", "a3", "a4"}) {
		t.Fatalf("orders holds %q", vals)
	}
}

// BenchmarkPrepareUnmarked: the wrapper's rules on an unmarked message,
// without testData (the guard's cost is one pointer load) and with it.
func BenchmarkPrepareUnmarked(b *testing.B) {
	bg := context.Background()
	for _, c := range []struct {
		name string
		rt   *shadowlane.Runtime
	}{{"off", func() *shadowlane.Runtime {
		rt, _ := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
		b.Cleanup(func() { rt.Close() })
		return rt
	}()}, {"on", bustest.TestDataRuntime(b, "")}} {
		s := newShadow(b, slsarama.WithShadowTopics("orders"), slsarama.WithRuntime(c.rt))
		hs := []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
		msg := &sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder("cart:12345"), Value: sarama.StringEncoder("v"), Headers: hs}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg.Topic = "orders"
				if err := s.Prepare(bg, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
