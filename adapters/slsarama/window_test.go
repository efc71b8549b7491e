package slsarama_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/envtag"
)

// A late lane's start window (issue 18), on sarama: the lane joins (its
// start pinned at the newest offset) before it is listed; the trunk
// handles the messages produced for the lane's env in between. Once
// listed, the lane passes over every one of them (the trunk's, counted)
// and takes the later ones, which the trunk skipped. Each message is
// handled exactly once; on the code before, the lane handled the early
// ones a second time.
func TestLateLaneStartWindow(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{})
	newS := func(opts ...slsarama.Option) *slsarama.Shadow {
		s, err := slsarama.New(append([]slsarama.Option{slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&lanes)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	trunk, lane := newS(), newS(slsarama.WithEnv("proj-a"))
	var (
		mu  sync.Mutex
		byL = map[string]int{}
		byT = map[string]int{}
	)
	count := func(m map[string]int) slsarama.MessageHandler {
		return func(ctx context.Context, msg *sarama.ConsumerMessage) error {
			mu.Lock()
			m[string(msg.Value)]++
			mu.Unlock()
			return nil
		}
	}
	ccfg := config()
	ccfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	ccfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	tc, err := trunk.Consumer(addrs, ccfg, "svc", []string{"orders"}, count(byT))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer(addrs, ccfg, "svc", []string{"orders"}, count(byL))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	stopT := startRun(t, tc)
	stopL := startRun(t, lc)
	waitStable(t, adm, "svc", 1)
	waitStable(t, adm, "svc-proj-a", 1)
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	produce := func(prefix string, n int) {
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(fmt.Sprintf("%s%03d", prefix, i))}
			if err := trunk.Prepare(marked("", "proj-a"), msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	counted := func(m map[string]int, prefix string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			c := 0
			for v := range m {
				if strings.HasPrefix(v, prefix) {
					c++
				}
			}
			return c >= 100
		}
	}
	const n = 100
	produce("early-", n) // the lane is not listed yet: the trunk's
	waitFor(t, "the trunk handles the early messages", counted(byT, "early-"))
	time.Sleep(300 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	produce("late-", n)
	waitFor(t, "the lane handles the late messages", counted(byL, "late-"))
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		e, l := fmt.Sprintf("early-%03d", i), fmt.Sprintf("late-%03d", i)
		if byT[e] != 1 || byL[e] != 0 {
			t.Errorf("%s handled by the trunk %d times and by the lane %d times, want the trunk once", e, byT[e], byL[e])
		}
		if byL[l] != 1 || byT[l] != 0 {
			t.Errorf("%s handled by the lane %d times and by the trunk %d times, want the lane once", l, byL[l], byT[l])
		}
	}
	if st := lane.Stats(); st.StartSkipped != n {
		t.Errorf("the lane counted %d messages passed over in its start window, want %d", st.StartSkipped, n)
	}
	t.Logf("start window: the trunk handled %d early messages, the lane passed over %d of them and handled the %d late ones", n, lane.Stats().StartSkipped, n)
}

// A sarama lane that leaves and comes back passes over the messages the
// trunk took while it was away (it reopens its start window when it
// leaves); on the code before, it handled them a second time.
func TestLaneReturnsAfterLeaving(t *testing.T) {
	addrs := newCluster(t)
	var lanes envtag.SwapLanes
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	newS := func(opts ...slsarama.Option) *slsarama.Shadow {
		s, err := slsarama.New(append([]slsarama.Option{slsarama.WithShadowTopics("orders"), slsarama.WithLanes(&lanes)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	trunk, lane := newS(), newS(slsarama.WithEnv("proj-a"))
	var (
		mu  sync.Mutex
		byL = map[string]int{}
		byT = map[string]int{}
	)
	count := func(m map[string]int) slsarama.MessageHandler {
		return func(ctx context.Context, msg *sarama.ConsumerMessage) error {
			mu.Lock()
			m[string(msg.Value)]++
			mu.Unlock()
			return nil
		}
	}
	ccfg := config()
	ccfg.Consumer.MaxWaitTime = 50 * time.Millisecond
	ccfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	tc, err := trunk.Consumer(addrs, ccfg, "svc", []string{"orders"}, count(byT))
	if err != nil {
		t.Fatal(err)
	}
	lc, err := lane.Consumer(addrs, ccfg, "svc", []string{"orders"}, count(byL))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := sarama.NewClusterAdmin(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	stopT := startRun(t, tc)
	stopL := startRun(t, lc)
	waitStable(t, adm, "svc", 1)
	waitStable(t, adm, "svc-proj-a", 1)
	sp, err := sarama.NewSyncProducer(addrs, config())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	produce := func(prefix string) {
		msgs := make([]*sarama.ProducerMessage, 50)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(fmt.Sprintf("%s%03d", prefix, i))}
			if err := trunk.Prepare(marked("", "proj-a"), msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := sp.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	all := func(m map[string]int, prefix string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			c := 0
			for v := range m {
				if strings.HasPrefix(v, prefix) {
					c++
				}
			}
			return c >= 50
		}
	}
	produce("first-")
	waitFor(t, "the lane handles the first messages", all(byL, "first-"))
	time.Sleep(300 * time.Millisecond)
	lanes.Store(envtag.StaticLanes{}) // the lane leaves
	produce("away-")
	waitFor(t, "the trunk handles the messages while the lane is away", all(byT, "away-"))
	time.Sleep(300 * time.Millisecond) // the trunk commits
	lanes.Store(envtag.StaticLanes{"svc": {"proj-a"}})
	produce("back-")
	waitFor(t, "the lane handles the messages after it came back", all(byL, "back-"))
	time.Sleep(300 * time.Millisecond)
	if err := stopL(); err != nil {
		t.Fatal(err)
	}
	if err := stopT(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 50 {
		for _, c := range []struct {
			prefix string
			lane   int
		}{{"first-", 1}, {"away-", 0}, {"back-", 1}} {
			v := fmt.Sprintf("%s%03d", c.prefix, i)
			if byL[v] != c.lane || byT[v] != 1-c.lane {
				t.Errorf("%s handled by the lane %d times and by the trunk %d times, want the %s once", v, byL[v], byT[v], map[int]string{0: "trunk", 1: "lane"}[c.lane])
			}
		}
	}
	t.Logf("the returning lane passed over %d messages the trunk took while it was away", lane.Stats().StartSkipped)
}
