package messaging

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
)

var value = make([]byte, 128)

// BenchmarkPrepare is the per-record cost of the produce rules alone.
func BenchmarkPrepare(b *testing.B) {
	s, err := slkafka.New(slkafka.WithShadowTopics("orders"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"unmarked", context.Background()},
		{"marked", propagation.With(context.Background(), propagation.Mark{Run: "run-1", Env: "proj-a"})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := kgo.Record{Topic: "orders", Value: value}
				if err := s.Prepare(c.ctx, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProduceSync produces one record at a time to kfake: the bare
// client, the Producer wrapper plus hook unmarked, and marked.
func BenchmarkProduceSync(b *testing.B) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "orders_shadow"))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	s, err := slkafka.New(slkafka.WithShadowTopics("orders"))
	if err != nil {
		b.Fatal(err)
	}
	bare, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	hooked, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.WithHooks(s))
	if err != nil {
		b.Fatal(err)
	}
	defer hooked.Close()
	p, err := s.Producer(hooked)
	if err != nil {
		b.Fatal(err)
	}
	bg := context.Background()
	mctx := propagation.With(bg, propagation.Mark{Run: "run-1"})
	run := func(b *testing.B, produce func(*kgo.Record) error) {
		b.ReportAllocs()
		for b.Loop() {
			if err := produce(&kgo.Record{Topic: "orders", Value: value}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		run(b, func(r *kgo.Record) error { return bare.ProduceSync(bg, r).FirstErr() })
	})
	b.Run("unmarked", func(b *testing.B) {
		run(b, func(r *kgo.Record) error { return p.ProduceSync(bg, r).FirstErr() })
	})
	b.Run("marked", func(b *testing.B) {
		run(b, func(r *kgo.Record) error { return p.ProduceSync(mctx, r).FirstErr() })
	})
}
