package drill

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A client bootstrapped from the Kafka fault proxy of one broker of a
// three-broker kfake cluster on loopback learns only proxy addresses
// (Metadata and FindCoordinator rewritten), so every connection goes
// through a proxy: a group consumer through the proxies gets every record
// produced through them, and after every proxy was killed and healed the
// clients carry on.
func TestKafkaProxyRewritesBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kp := newKafkaProxies()
	defer kp.close()
	seed, _, err := kp.proxyFor(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seed.Addr()), kgo.ProducerLinger(0), kgo.FetchMaxWait(100 * time.Millisecond)}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	brokers, err := kadm.NewClient(prod).ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxied := map[string]bool{}
	kp.mu.Lock()
	for _, p := range kp.byUpstream {
		proxied[p.Addr()] = true
	}
	kp.mu.Unlock()
	if len(brokers) != 3 || len(proxied) != 3 {
		t.Fatalf("%d brokers, %d proxies; want 3 of each", len(brokers), len(proxied))
	}
	for _, b := range brokers {
		if a := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); !proxied[a] {
			t.Errorf("broker %d advertised as %s, not a proxy address", b.NodeID, a)
		}
	}

	cons, err := kgo.NewClient(append(opts, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	got := map[string]int{}
	consume := func(want int) {
		t.Helper()
		for len(got) < want && ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
			pcancel()
		}
		if len(got) != want {
			t.Fatalf("consumed %d distinct records, want %d", len(got), want)
		}
	}
	produce(0, 30)
	consume(30)

	// Kill every proxy (open connections reset, new ones refused), heal,
	// and carry on.
	kp.mu.Lock()
	all := make([]*faultProxy, 0, len(kp.byUpstream))
	for _, p := range kp.byUpstream {
		all = append(all, p)
	}
	kp.mu.Unlock()
	for _, p := range all {
		p.inject(FaultKill)
	}
	time.Sleep(200 * time.Millisecond)
	hit := 0
	for _, p := range all {
		hit += p.healAll()
	}
	if hit == 0 {
		t.Error("the kill hit no connection: the clients do not go through the proxies")
	}
	produce(30, 30)
	consume(60)
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Errorf("commit through the proxies (coordinator rewritten): %v", err)
	}
}
