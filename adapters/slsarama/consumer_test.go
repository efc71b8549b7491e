package slsarama_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	slsarama "github.com/shadowlane/shadowlane/adapters/slsarama"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// handled collects what a handler saw, by message value.
type handled struct {
	mu    sync.Mutex
	marks map[string]propagation.Mark
	topic map[string]string
	order []string
}

func newHandled() *handled {
	return &handled{marks: map[string]propagation.Mark{}, topic: map[string]string{}}
}

func (h *handled) add(ctx context.Context, msg *sarama.ConsumerMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := string(msg.Value)
	h.marks[v] = propagation.FromContext(ctx)
	h.topic[v] = msg.Topic
	h.order = append(h.order, v)
}

func (h *handled) values() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.order)
}

// runUntil runs c until cond holds (then a short grace for strays) or 20s
// pass, and returns Run's error.
func runUntil(t *testing.T, c *slsarama.Consumer, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for !cond() {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			t.Fatal("condition not reached within 20s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	return <-done
}

func send(t *testing.T, p *slsarama.Producer, ctx context.Context, topic, v string) {
	t.Helper()
	if _, _, err := p.SendMessage(ctx, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
		t.Fatalf("send %s: %v", v, err)
	}
}

// The shadow consumer group runs only for configured group/topic pairs:
// the configured group gets production and load-test messages (each with
// its mark), another group on the same topic never reads the shadow topic.
func TestConsumerShadowGroupOnlyForConfiguredPairs(t *testing.T) {
	addrs := newCluster(t)
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithShadowGroups("billing"))
	if _, err := s.Consumer(addrs, config(), "billing", []string{"orders_shadow"}, func(context.Context, *sarama.ConsumerMessage) error { return nil }); !errors.Is(err, slsarama.ErrConfig) {
		t.Fatalf("production consumer of a shadow topic: %v", err)
	}
	if _, err := slsarama.New(slsarama.WithShadowGroups("billing_shadow")); !errors.Is(err, slsarama.ErrConfig) {
		t.Fatalf("shadow group list naming a shadow group: %v", err)
	}
	sp := syncProducer(t, addrs, config())
	p := s.SyncProducer(sp)
	bg := context.Background()
	send(t, p, bg, "orders", "prod-1")
	send(t, p, marked("r1", ""), "orders", "load-1")
	send(t, p, marked("r1", "proj-a"), "orders", "load-2")
	send(t, p, bg, "payments", "pay-1")

	billing := newHandled()
	c, err := s.Consumer(addrs, config(), "billing", []string{"orders", "payments"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		billing.add(ctx, msg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []slsarama.Plan{
		{Group: "billing", Topics: []string{"orders", "payments"}},
		{Group: "billing_shadow", Topics: []string{"orders_shadow"}, Shadow: true},
	}
	if got := c.Plans(); len(got) != 2 || got[0].Group != want[0].Group || !slices.Equal(got[0].Topics, want[0].Topics) || got[0].Shadow ||
		got[1].Group != want[1].Group || !slices.Equal(got[1].Topics, want[1].Topics) || !got[1].Shadow {
		t.Fatalf("plans %+v, want %+v", got, want)
	}
	if err := runUntil(t, c, func() bool { return len(billing.values()) >= 4 }); err != nil {
		t.Fatalf("run: %v", err)
	}
	wantMarks := map[string]propagation.Mark{"prod-1": {}, "pay-1": {}, "load-1": {Run: "r1"}, "load-2": {Run: "r1", Env: "proj-a"}}
	wantTopic := map[string]string{"prod-1": "orders", "pay-1": "payments", "load-1": "orders_shadow", "load-2": "orders_shadow"}
	if got := billing.values(); len(got) != 4 {
		t.Errorf("billing handled %v, want each of 4 messages once", got)
	}
	for v, m := range wantMarks {
		if billing.marks[v] != m || billing.topic[v] != wantTopic[v] {
			t.Errorf("%s handled from %q with %v, want %q with %v", v, billing.topic[v], billing.marks[v], wantTopic[v], m)
		}
	}

	// A group not named in WithShadowGroups: production group only.
	audit := newHandled()
	c, err = s.Consumer(addrs, config(), "audit", []string{"orders"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		audit.add(ctx, msg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Plans(); len(got) != 1 || got[0].Group != "audit" || got[0].Shadow {
		t.Fatalf("audit plans %+v: want the production group only", got)
	}
	if err := runUntil(t, c, func() bool { return len(audit.values()) >= 1 }); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := audit.values(); !slices.Equal(got, []string{"prod-1"}) || audit.marks["prod-1"] != (propagation.Mark{}) {
		t.Errorf("audit handled %v (%v), want only prod-1, unmarked", got, audit.marks)
	}

	// A lane instance joins "<group>-<env>" and its shadow twin, and takes
	// only its env.
	lane := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithShadowGroups("billing"), slsarama.WithEnv("proj-a"))
	lh := newHandled()
	c, err = lane.Consumer(addrs, config(), "billing", []string{"orders"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
		lh.add(ctx, msg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Plans(); len(got) != 2 || got[0].Group != "billing-proj-a" || got[1].Group != "billing-proj-a_shadow" {
		t.Fatalf("lane plans %+v", got)
	}
	// A new lane group starts at the newest offset: load-2, produced
	// before it existed, was the trunk's. Messages produced after it joined
	// are its own (keep producing until one arrives: the join takes a
	// while).
	stopSend := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stopSend:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, _, err := p.SendMessage(marked("r1", "proj-a"), &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(fmt.Sprintf("lane-%d", i))}); err != nil {
				t.Errorf("send: %v", err)
				return
			}
			if _, _, err := p.SendMessage(marked("r1", ""), &sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder(fmt.Sprintf("trunk-%d", i))}); err != nil {
				t.Errorf("send: %v", err)
				return
			}
		}
	}()
	err = runUntil(t, c, func() bool { return len(lh.values()) >= 1 })
	close(stopSend)
	<-sent
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, v := range lh.values() {
		if !strings.HasPrefix(v, "lane-") || lh.marks[v] != (propagation.Mark{Run: "r1", Env: "proj-a"}) {
			t.Errorf("lane handled %s (%v), want only lane-* messages produced after it started", v, lh.marks[v])
		}
	}
}

// A handler error stops Run without marking the message: the next run of
// the group gets it again, and nothing before it twice. A message with a
// malformed mark goes to the refusal callback, never to the handler; when
// the callback fails, Run stops and the message is delivered again.
func TestConsumerErrorsAndRefused(t *testing.T) {
	addrs := newCluster(t)
	var (
		mu      sync.Mutex
		refused []string
		failRef = true
	)
	s := newShadow(t, slsarama.WithShadowTopics("orders"), slsarama.WithRefused(func(ctx context.Context, msg *sarama.ConsumerMessage, err error) error {
		mu.Lock()
		defer mu.Unlock()
		var se *shadow.Error
		if propagation.FromContext(ctx) != (propagation.Mark{}) || !errors.Is(err, shadow.ErrUnsupported) || !errors.As(err, &se) || se.Store != "kafka" {
			t.Errorf("refused callback: ctx mark %v, err %v", propagation.FromContext(ctx), err)
		}
		refused = append(refused, string(msg.Value))
		if failRef {
			failRef = false
			return errors.New("dead-letter queue down")
		}
		return nil
	}))
	sp := syncProducer(t, addrs, config())
	p := s.SyncProducer(sp)
	bg := context.Background()
	send(t, p, bg, "orders", "a")
	send(t, p, bg, "orders", "poison-once")
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("bad-mark"),
		Headers: []sarama.RecordHeader{{Key: []byte(bus.HeaderEnv), Value: []byte("no spaces")}}}); err != nil {
		t.Fatal(err)
	}
	send(t, p, marked("", "proj-b"), "orders", "b")

	var (
		hmu    sync.Mutex
		failed bool
		runs   [][]string
	)
	errPoison := errors.New("transient failure")
	newRun := func() *slsarama.Consumer {
		hmu.Lock()
		runs = append(runs, nil)
		hmu.Unlock()
		c, err := s.Consumer(addrs, config(), "ledger", []string{"orders"}, func(ctx context.Context, msg *sarama.ConsumerMessage) error {
			hmu.Lock()
			defer hmu.Unlock()
			v := string(msg.Value)
			if v == "poison-once" && !failed {
				failed = true
				return errPoison
			}
			runs[len(runs)-1] = append(runs[len(runs)-1], v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	last := func() []string {
		hmu.Lock()
		defer hmu.Unlock()
		return slices.Clone(runs[len(runs)-1])
	}
	never := func() bool { return false }

	// Run 1: "a", then the handler fails on poison-once: Run returns it.
	if err := runUntil(t, newRun(), never); !errors.Is(err, errPoison) {
		t.Fatalf("run 1 returned %v, want the handler's error", err)
	}
	if got := last(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("run 1 handled %v, want [a]", got)
	}
	// Run 2: poison-once again (now handled), then the malformed mark: the
	// refusal callback fails, Run returns its error.
	if err := runUntil(t, newRun(), never); err == nil || err.Error() != "dead-letter queue down" {
		t.Fatalf("run 2 returned %v, want the refusal callback's error", err)
	}
	if got := last(); !slices.Equal(got, []string{"poison-once"}) {
		t.Errorf("run 2 handled %v, want [poison-once]", got)
	}
	// Run 3: the malformed message again (callback succeeds, message
	// marked), then b.
	if err := runUntil(t, newRun(), func() bool { return len(last()) >= 1 }); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	if got := last(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("run 3 handled %v, want [b]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(refused, []string{"bad-mark", "bad-mark"}) {
		t.Errorf("refusal callback saw %v, want bad-mark twice (failed, then dead-lettered)", refused)
	}
	all := []string{}
	for _, r := range runs {
		all = append(all, r...)
	}
	sort.Strings(all)
	if !slices.Equal(all, []string{"a", "b", "poison-once"}) {
		t.Errorf("handled over all runs %v: want every message once, the malformed one never", all)
	}
}
