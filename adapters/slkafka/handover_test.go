package slkafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
)

// The hand-over on the shadow side: a slow proj-a lane consuming load-test
// records (shadow topic, shadow groups) leaves after some of them; the
// trunk takes the rest over from the lane's shadow group
// ("svc-proj-a_shadow"): every record handled exactly once overall.
func TestLaneLeavesHandsOverShadowBacklog(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	trunk := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithLanes(&lanes))
	lane := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithEnv("proj-a"), slkafka.WithLanes(&lanes))
	p, err := trunk.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		byL  = map[string]int{}
		byT  = map[string]int{}
		opts = []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}
	)
	count := func(m map[string]int, slow bool) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			if slow {
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			m[string(r.Value)]++
			mu.Unlock()
			return nil
		}
	}
	tc, err := trunk.Consumer("svc", []string{"orders"}, count(byT, false), opts...)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer("svc", []string{"orders"}, count(byL, true), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stopT := runConsumer(t, tc)
	stopL := runConsumer(t, lc)
	waitStarted(t, lc, stopL)
	const n = 150
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "lt-%03d", i)}
	}
	if err := p.ProduceSync(marked("r1", "proj-a"), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	total := func() (lane, all int) {
		mu.Lock()
		defer mu.Unlock()
		for i := range n {
			v := fmt.Sprintf("lt-%03d", i)
			if byL[v]+byT[v] > 0 {
				all++
			}
		}
		return len(byL), all
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l, _ := total(); l >= 20 {
			break
		}
	}
	lanes.Store(envtag.StaticLanes{}) // proj-a leaves
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, all := total(); all == n {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	taken := 0
	for i := range n {
		v := fmt.Sprintf("lt-%03d", i)
		if c := byL[v] + byT[v]; c != 1 {
			t.Errorf("%s handled %d times overall (lane %d, trunk %d), want exactly once", v, c, byL[v], byT[v])
		}
		taken += byT[v]
	}
	if taken == 0 || len(byL) == 0 {
		t.Errorf("lane handled %d, trunk took over %d: want both some", len(byL), taken)
	}
	t.Logf("shadow side: slow lane handled %d of %d before leaving; the trunk took over %d", len(byL), n, taken)
}
