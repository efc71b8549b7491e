package slkafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// TestReconcileKafka sends production, marked and env-tagged records with
// known ids to a 4-partition topic on kfake through the franz-go
// Producer and consumes them with trunk instances of group "svc", a lane
// (proj-b) dropped half-way and a lane (proj-a) that starts late, through
// a rejected offset commit (the first trunk instance fails mid-batch with
// records handled but not committed, and leaves), group rebalances (a
// second and a third instance join), handler errors (retries), poison
// records and malformed marks. It reconciles by id from the consumer side
// (each record handled once by the right consumer under the right mark,
// the rejected commit's at-least-once duplicates counted and bounded,
// refusals exactly once, other records flowing while the poison is
// retried) and from the broker side (a plain client reads both topics; an
// admin client finds every group committed to the end).
func TestReconcileKafka(t *testing.T) {
	n := bustest.Messages()
	cluster := fakeCluster(t, 4, "orders", "orders_shadow") // closed after the consumers' clean-ups
	addrs := cluster.ListenAddrs()
	// Once armed, the next offset commit of group "svc" is rejected; once
	// armRefusal is set (by the refusal of the poison X-R-0), the next one
	// too: the commit of that refusal.
	var armed, rejected, armRefusal atomic.Bool
	controlCommits(cluster, "svc", func(*kmsg.OffsetCommitRequest) bool {
		return armRefusal.CompareAndSwap(true, false) || armed.Load() && rejected.CompareAndSwap(false, true)
	}, rejectCommit)

	lg := bustest.NewLedger()
	var xrRefused atomic.Bool
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-b"}})
	opts := []slkafka.Option{
		slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"), slkafka.WithLanes(&lanes),
		slkafka.WithRetry(3, 100*time.Millisecond, 200*time.Millisecond),
		slkafka.WithRefused(func(ctx context.Context, r *kgo.Record, err error) error {
			lg.Refuse(string(r.Value), err)
			if string(r.Value) == "X-R-0" {
				armRefusal.Store(true)
				xrRefused.Store(true)
			}
			return nil
		}),
	}
	trunk := newShadow(t, opts...)
	laneA := newShadow(t, append(opts, slkafka.WithEnv("proj-a"))...)
	laneB := newShadow(t, append(opts, slkafka.WithEnv("proj-b"))...)
	copts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(50 * time.Millisecond)}

	flaky := func(id string) bool { return strings.HasSuffix(id, "37") } // fails its first attempt
	handler := func(who string, after func()) slkafka.Handler {
		return func(ctx context.Context, r *kgo.Record) error {
			if err := lg.Try(ctx, who, string(r.Value), flaky); err != nil || after == nil {
				return err
			}
			after()
			return nil
		}
	}
	// start runs a consumer; done is closed when Run returned, stop
	// cancels it and returns Run's error.
	start := func(s *slkafka.Shadow, h slkafka.Handler) (c *slkafka.Consumer, done chan struct{}, stop func() error) {
		c, err := s.Consumer("svc", []string{"orders"}, h, copts...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done = make(chan struct{})
		var runErr error
		go func() { runErr = c.Run(ctx); close(done) }()
		stop = func() error { cancel(); <-done; return runErr }
		t.Cleanup(func() { stop() })
		select {
		case <-c.Started():
		case <-time.After(30 * time.Second):
			t.Fatal("consumer not started")
		}
		return c, done, stop
	}

	// atEnd waits until every group committed to the end of its topic
	// (read with an admin client).
	adm := kadm.NewClient(newClient(t, addrs))
	atEnd := func(groups map[string]string) {
		ctx := context.Background()
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for g, topic := range groups {
			for {
				ends, err := adm.ListEndOffsets(ctx, topic)
				if err != nil {
					t.Fatal(err)
				}
				offs, err := adm.FetchOffsets(ctx, g)
				if err != nil {
					t.Fatal(err)
				}
				lag := int64(0)
				ends.Each(func(o kadm.ListedOffset) {
					c, _ := offs.Lookup(o.Topic, o.Partition)
					lag += o.Offset - max(c.At, 0)
				})
				if lag == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("broker: group %s has %d records not committed on %s", g, lag, topic)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	var handledT1 atomic.Int64
	var armOnce atomic.Bool
	_, t1done, t1stop := start(trunk, handler("trunk", func() {
		// Armed once a quarter of the first phase was handled and the
		// first poison refused (its commit rejected once, then retried).
		if handledT1.Add(1) >= int64(n/8) && xrRefused.Load() && armOnce.CompareAndSwap(false, true) {
			armed.Store(true)
		}
	}))
	_, _, lbStop := start(laneB, handler("lane-b", nil))

	p, err := trunk.Producer(newClient(t, addrs, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var inflight sync.WaitGroup
	send := func(ctx context.Context, id string) {
		inflight.Add(1)
		p.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte(id), Value: []byte(id)}, func(_ *kgo.Record, err error) {
			defer inflight.Done()
			if err != nil {
				t.Errorf("produce %s: %v", id, err)
			}
		})
	}
	rawCl := newClient(t, addrs)
	rawSend := func(id string, hs ...kgo.RecordHeader) {
		if err := rawCl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte(id), Value: []byte(id), Headers: hs}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	run := propagation.With(ctx, propagation.Mark{Run: "r1"})
	envA := propagation.With(ctx, propagation.Mark{Env: "proj-a"})
	envB := propagation.With(ctx, propagation.Mark{Env: "proj-b"})

	// A poison record first: its refusal's commit is rejected once.
	send(ctx, "X-R-0")
	inflight.Wait()
	lg.WaitIDs(t, "the first poison", []string{"X-R-0"})
	quarter := n / 4
	var pm struct {
		sync.Mutex
		p, m []string
	}
	var bg sync.WaitGroup
	bg.Go(func() {
		for i := range quarter {
			pid, mid := fmt.Sprintf("P-%05d", i), fmt.Sprintf("M-%05d", i)
			send(ctx, pid)
			send(run, mid)
			pm.Lock()
			pm.p, pm.m = append(pm.p, pid), append(pm.m, mid)
			pm.Unlock()
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // spread over the phases
			}
		}
	})
	half := quarter / 2
	var a1, a2, b1, b2 []string
	for i := range half {
		a1, b1 = append(a1, fmt.Sprintf("A-%05d", i)), append(b1, fmt.Sprintf("B-%05d", i))
		send(envA, a1[i])
		send(envB, b1[i])
	}
	// The first trunk instance's commit is rejected: it fails with
	// records handled but not committed and leaves the group.
	select {
	case <-t1done:
		err := t1stop()
		if err == nil {
			t.Fatal("the first trunk instance stopped without the commit error")
		}
		t.Logf("first trunk instance: %v", err)
	case <-time.After(45 * time.Second):
		t.Fatal("the first trunk instance's commit was never rejected")
	}
	// proj-b's lane is dropped while the failed instance's batch waits
	// for redelivery (issue 18: a lane dropped during a crashed
	// consumer's redelivery): the proj-b records in it, which the first
	// instance skipped and the lane handled, lie below the lane's floor,
	// and the next trunk instance passes over them.
	lg.WaitIDs(t, "proj-b's lane", b1)
	lanes.Store(envtag.StaticLanes{})
	if err := lbStop(); err != nil {
		t.Error(err)
	}
	start(trunk, handler("trunk", nil))
	lg.WaitIDs(t, "phase 1", append(append([]string{}, a1...), b1...))

	// proj-a's lane starts (its groups pinned at the end); proj-a records
	// sent before it is listed are the trunk's, and the lane passes over
	// them in its start window (issue 18: a late lane's start window);
	// then it is listed. A third trunk instance joins (a rebalance),
	// poison and malformed records arrive.
	start(laneA, handler("lane-a", nil))
	var aw []string
	for i := range 20 {
		aw = append(aw, fmt.Sprintf("W-%05d", i))
		send(envA, aw[i])
	}
	inflight.Wait()
	lg.WaitIDs(t, "proj-a before its lane is listed", aw)
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	send(ctx, "X-P-0")
	send(run, "X-M-0")
	var bad []string
	for i := range 5 {
		f, c := fmt.Sprintf("F-%d", i), fmt.Sprintf("C-%d", i)
		rawSend(f, kgo.RecordHeader{Key: "X-SHADOWLANE-RUN", Value: []byte("forged")})
		rawSend(c, kgo.RecordHeader{Key: "X-Shadowlane-Env", Value: []byte("proj-a")}, kgo.RecordHeader{Key: "x-shadowlane-env", Value: []byte("proj-b")})
		bad = append(bad, f, c)
	}
	for i := half; i < quarter; i++ {
		a, b := fmt.Sprintf("A-%05d", i), fmt.Sprintf("B-%05d", i)
		a2, b2 = append(a2, a), append(b2, b)
		send(envA, a)
		send(envB, b)
		if i == half+half/2 {
			start(trunk, handler("trunk", nil))
		}
	}
	bg.Wait()
	inflight.Wait()
	all := append([]string{"X-R-0", "X-P-0", "X-M-0"}, bad...)
	for _, s := range [][]string{pm.p, pm.m, a1, aw, a2, b1, b2} {
		all = append(all, s...)
	}
	lg.WaitIDs(t, "all", all)

	// Broker side: every live group committed to the end of its topic.
	groups := map[string]string{}
	for _, s := range []*slkafka.Shadow{trunk, laneA} {
		c, err := s.Consumer("svc", []string{"orders"}, func(context.Context, *kgo.Record) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		for _, pl := range c.Plans() {
			groups[pl.Group] = pl.Topics[0]
		}
	}
	atEnd(groups)
	time.Sleep(300 * time.Millisecond)

	dups := 0
	for _, c := range []struct {
		ids          []string
		by, run, env string
	}{
		{pm.p, "trunk", "", ""},
		{pm.m, "trunk", "r1", ""},
		{a1, "trunk", "", "proj-a"},
		{aw, "trunk", "", "proj-a"},
		{a2, "lane-a", "", "proj-a"},
		{b1, "lane-b", "", "proj-b"},
		{b2, "trunk", "", "proj-b"},
	} {
		d, _ := lg.Check(t, c.ids, c.by, c.run, c.env)
		dups += d
	}
	// The rejected commit redelivers the batch the first instance had
	// handled: at most one poll (1,000 records), each counted where the
	// commit failed.
	st := trunk.Stats()
	if dups > 1000 || int64(dups) > st.Uncommitted || st.Uncommitted > 1000 {
		t.Errorf("%d duplicates, %d counted as uncommitted: want at most the counted, and at most one poll's worth (the rejected commit's batch)", dups, st.Uncommitted)
	}
	if st.RefusedUncommitted != 0 {
		t.Errorf("%d refusals counted as uncommitted, want 0 (the refusal's rejected commit is retried)", st.RefusedUncommitted)
	}
	poison := []string{"X-R-0", "X-P-0", "X-M-0"}
	lg.RefusedOnce(t, slkafka.ErrRetriesExhausted, poison...)
	for _, id := range poison {
		if a := lg.Attempts("trunk/" + id); a != 3 {
			t.Errorf("poison %s tried %d times, want 3", id, a)
		}
	}
	// No starvation: a poison record holds its partition (the consumer's
	// poll) for the bounded retry budget only; then it is refused and
	// everything behind it is handled (checked above: nothing lost).
	forged, conflict := bustest.Split(bad, func(id string) bool { return id[0] != 'C' })
	lg.RefusedOnce(t, shadow.ErrBlocked, forged...)
	lg.RefusedOnce(t, shadow.ErrUnsupported, conflict...)

	// Broker side: a plain client reads both topics.
	prod, sh := map[string]*kgo.Record{}, map[string]*kgo.Record{}
	for _, x := range []struct {
		topic string
		into  map[string]*kgo.Record
	}{{"orders", prod}, {"orders_shadow", sh}} {
		for _, r := range readAll(t, addrs, x.topic) {
			if _, dup := x.into[string(r.Value)]; dup {
				t.Errorf("broker: %s stored twice in %s", r.Value, x.topic)
			}
			x.into[string(r.Value)] = r
		}
	}
	for id, r := range prod {
		_, marked := header(r, bus.HeaderRun)
		if strings.HasPrefix(id, "M-") || id == "X-M-0" || marked {
			t.Errorf("broker: %s on the production topic (run header %v)", id, marked)
		}
	}
	for id, r := range sh {
		if run, _ := header(r, bus.HeaderRun); run != "r1" || (!strings.HasPrefix(id, "M-") && id != "X-M-0") {
			t.Errorf("broker: %s on the shadow topic with run %q", id, run)
		}
	}
	wantProd := len(pm.p) + len(a1) + len(aw) + len(a2) + len(b1) + len(b2) + 2 + len(bad)
	if len(prod) != wantProd || len(sh) != len(pm.m)+1 {
		t.Errorf("broker: production topic %d ids (want %d), shadow topic %d (want %d)", len(prod), wantProd, len(sh), len(pm.m)+1)
	}
	t.Logf("kafka reconcile: sent %d (production %d, marked %d, proj-a %d+%d+%d, proj-b %d+%d, poison 3, malformed %d); broker: production topic %d, shadow topic %d, %d groups at the end; handled %d ids, at-least-once duplicates %d (rejected commit; counted %d); refused %d; passed over below the dropped lane's floor %d; passed over in the late lane's start window %d",
		wantProd+len(sh), len(pm.p), len(pm.m), len(a1), len(aw), len(a2), len(b1), len(b2), len(bad), len(prod), len(sh), len(groups), lg.Ids(), dups, st.Uncommitted, lg.RefusedIds(), st.FloorSkipped, laneA.Stats().StartSkipped)
}
