package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/internal/testenv"
)

// TestShadowKafka: on kfake, create makes the shadow topic with the
// production partitions and topic configs, a second create keeps it, and
// purge --all --yes empties the shadow topic and leaves production alone.
func TestShadowKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seeds := strings.Join(c.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	retention := "3600000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &retention}}, "orders"); err != nil {
		t.Fatal(err)
	}
	args := []string{"--kafka", seeds, "--topics", "orders"}
	code, out, errs := runCLI(t, append([]string{"shadow", "plan"}, args...)...)
	if code != exitOK || !strings.Contains(out, "orders_shadow: would create with 3 partition(s)") || !strings.Contains(out, "retention.ms=3600000") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"shadow", "create"}, args...)...)
	if code != exitOK {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	md, err := adm.Metadata(ctx, "orders_shadow")
	if err != nil || len(md.Topics["orders_shadow"].Partitions) != 3 {
		t.Fatalf("shadow topic: %v %+v", err, md.Topics["orders_shadow"])
	}
	if code, out, _ = runCLI(t, append([]string{"shadow", "create"}, args...)...); code != exitOK || !strings.Contains(out, "orders_shadow: exists") {
		t.Fatalf("second create: exit %d\n%s", code, out)
	}
	for i := 0; i < 4; i++ {
		for _, topic := range []string{"orders", "orders_shadow"} {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	purge := append([]string{"shadow", "purge", "--all"}, args...)
	if code, out, _ = runCLI(t, purge...); code != exitOK || !strings.Contains(out, "orders_shadow: would delete 4 record(s)") {
		t.Fatalf("purge dry run: exit %d\n%s", code, out)
	}
	if code, out, errs = runCLI(t, append(purge, "--yes")...); code != exitOK {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errs)
	}
	count := func(topic string) int64 {
		s, _ := adm.ListStartOffsets(ctx, topic)
		e, _ := adm.ListEndOffsets(ctx, topic)
		var n int64
		e.Each(func(o kadm.ListedOffset) {
			if so, ok := s.Lookup(o.Topic, o.Partition); ok {
				n += o.Offset - so.Offset
			}
		})
		return n
	}
	if n := count("orders_shadow"); n != 0 {
		t.Errorf("%d records left in orders_shadow", n)
	}
	if n := count("orders"); n != 4 {
		t.Errorf("production topic has %d records, want 4", n)
	}
}

// TestShadowNATS: on a real NATS server, create makes the shadow stream
// with the production configuration on the shadow subjects; purge --all
// --yes empties it and leaves the production stream alone.
func TestShadowNATS(t *testing.T) {
	addr := testenv.Addr("SHADOWLANE_NATS_ADDR", "127.0.0.1:4222")
	testenv.Need(t, "NATS", addr)
	uri := "nats://" + addr
	nc, err := nats.Connect(uri)
	if err != nil {
		testenv.Missing(t, "NATS", addr, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := randSuffix()
	name, subj := "SLSH"+r, "slsh"+r+".orders"
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), name)
		js.DeleteStream(context.Background(), name+"_shadow")
	})
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, MaxMsgs: 1000, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--nats", uri, "--streams", name}
	code, out, errs := runCLI(t, append([]string{"shadow", "create"}, args...)...)
	if code != exitOK || !strings.Contains(out, name+"_shadow: created with subjects [shadow."+subj+"]") {
		t.Fatalf("create: exit %d\n%s%s", code, out, errs)
	}
	st, err := js.Stream(ctx, name+"_shadow")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxMsgs != 1000 || cfg.Storage != jetstream.MemoryStorage {
		t.Errorf("shadow stream config not copied: %+v", cfg)
	}
	for i := 0; i < 3; i++ {
		for _, s := range []string{subj, "shadow." + subj} {
			if _, err := js.Publish(ctx, s, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, out, _ = runCLI(t, append([]string{"shadow", "purge", "--all"}, args...)...); code != exitOK || !strings.Contains(out, "would purge 3 message(s)") {
		t.Fatalf("purge dry run: exit %d\n%s", code, out)
	}
	if code, out, errs = runCLI(t, append([]string{"shadow", "purge", "--all", "--yes"}, args...)...); code != exitOK {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errs)
	}
	for s, want := range map[string]uint64{name: 3, name + "_shadow": 0} {
		st, err := js.Stream(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != want {
			t.Errorf("stream %s holds %d messages, want %d", s, info.State.Msgs, want)
		}
	}
}
