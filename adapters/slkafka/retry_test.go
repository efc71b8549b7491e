package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
	"github.com/shadowlane/shadowlane/propagation"
)

func TestNewRejectsBadRetry(t *testing.T) {
	for _, o := range []slkafka.Option{
		slkafka.WithRetry(-1, 0, 0),
		slkafka.WithRetry(3, -time.Millisecond, 0),
		slkafka.WithRetry(3, time.Second, time.Millisecond),
	} {
		if _, err := slkafka.New(o); !errors.Is(err, slkafka.ErrConfig) {
			t.Errorf("New accepted a bad retry: %v", err)
		}
	}
}

// A handler that fails twice on a record is retried with backoff, in
// order, without losing or misrouting a record (production and shadow
// group alike); a poison record goes, after the last attempt, to the
// refused callback with the record's mark and ErrRetriesExhausted, and
// the consumer commits past it and carries on.
func TestConsumerRetriesAndRefusesPoison(t *testing.T) {
	addrs := newCluster(t)
	var (
		mu       sync.Mutex
		attempts = map[string][]time.Time{}
		handled  = map[string]int{}
		order    = map[string][]string{} // topic -> values handled, in order
		marks    = map[string]propagation.Mark{}
		refused  = map[string]error{}
		refMark  = map[string]propagation.Mark{}
		errFlaky = errors.New("database briefly down")
		errBad   = errors.New("cannot handle this record")
	)
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"),
		slkafka.WithRetry(3, 20*time.Millisecond, 30*time.Millisecond),
		slkafka.WithRefused(func(ctx context.Context, r *kgo.Record, err error) error {
			mu.Lock()
			defer mu.Unlock()
			refused[string(r.Value)] = err
			refMark[string(r.Value)] = propagation.FromContext(ctx)
			return nil
		}))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	// Production: p0 p1 flaky-p poison-p p2; load-test: l0 flaky-l poison-l l1.
	for _, m := range []struct {
		ctx context.Context
		v   string
	}{
		{context.Background(), "p0"}, {context.Background(), "p1"}, {context.Background(), "flaky-p"}, {context.Background(), "poison-p"}, {context.Background(), "p2"},
		{marked("r1", ""), "l0"}, {marked("r1", ""), "flaky-l"}, {marked("r1", "proj-a"), "poison-l"}, {marked("r1", ""), "l1"},
	} {
		if err := p.ProduceSync(m.ctx, &kgo.Record{Topic: "orders", Value: []byte(m.v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	h := func(ctx context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		v := string(r.Value)
		attempts[v] = append(attempts[v], time.Now())
		switch {
		case strings.HasPrefix(v, "flaky") && len(attempts[v]) < 3:
			return errFlaky
		case strings.HasPrefix(v, "poison"):
			return fmt.Errorf("%s: %w", v, errBad)
		}
		handled[v]++
		order[r.Topic] = append(order[r.Topic], v)
		marks[v] = propagation.FromContext(ctx)
		if len(handled) == 7 && len(refused) == 2 {
			close(done)
		}
		return nil
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100 * time.Millisecond)}
	c, err := s.Consumer("svc", []string{"orders"}, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		t.Fatalf("handled %v, refused %v", handled, refused)
	}
	time.Sleep(200 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	mu.Lock()
	if got := fmt.Sprint(order["orders"]); got != "[p0 p1 flaky-p p2]" {
		t.Errorf("orders handled in order %s, want [p0 p1 flaky-p p2]", got)
	}
	if got := fmt.Sprint(order["orders_shadow"]); got != "[l0 flaky-l l1]" {
		t.Errorf("orders_shadow handled in order %s, want [l0 flaky-l l1]", got)
	}
	for v, n := range handled {
		if n != 1 {
			t.Errorf("%s handled %d times", v, n)
		}
		if want := v[0] == 'l' || v == "flaky-l"; marks[v].LoadTest() != want || (want && marks[v].Run != "r1") {
			t.Errorf("%s handled with mark %v", v, marks[v])
		}
	}
	for _, v := range []string{"flaky-p", "flaky-l", "poison-p", "poison-l"} {
		if n := len(attempts[v]); n != 3 {
			t.Errorf("%s tried %d times, want 3", v, n)
			continue
		}
		// backoff 20ms, then 30ms (doubled, capped)
		if d1, d2 := attempts[v][1].Sub(attempts[v][0]), attempts[v][2].Sub(attempts[v][1]); d1 < 20*time.Millisecond || d2 < 30*time.Millisecond {
			t.Errorf("%s retried after %s and %s, want >= 20ms and >= 30ms", v, d1, d2)
		}
	}
	for v, m := range map[string]propagation.Mark{"poison-p": {}, "poison-l": {Run: "r1", Env: "proj-a"}} {
		err := refused[v]
		if !errors.Is(err, slkafka.ErrRetriesExhausted) || !errors.Is(err, errBad) {
			t.Errorf("%s refused with %v, want ErrRetriesExhausted and the handler's error", v, err)
		}
		if refMark[v] != m {
			t.Errorf("%s refused under mark %v, want %v", v, refMark[v], m)
		}
	}
	mu.Unlock()

	// Everything was committed, the poison records included: a restarted
	// consumer of the group gets nothing.
	again := newSeen()
	c2, err := s.Consumer("svc", []string{"orders"}, handlerInto(again, "svc"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop2 := runConsumer(t, c2)
	time.Sleep(1500 * time.Millisecond)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	again.mu.Lock()
	defer again.mu.Unlock()
	if len(again.recs) != 0 {
		t.Errorf("restarted consumer got %+v, want nothing (all committed)", again.recs)
	}
}

// Without a refused callback, a record that fails on every attempt stops
// Run uncommitted, as without retries; stopping during a backoff wait
// returns nil and commits nothing of the record.
func TestConsumerRetryWithoutRefusedStops(t *testing.T) {
	addrs := newCluster(t)
	errBad := errors.New("bad")
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithRetry(2, time.Millisecond, 0))
	cl := newClient(t, addrs)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var n int
	c, err := s.Consumer("svc", []string{"orders"}, func(context.Context, *kgo.Record) error { n++; return errBad },
		kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Run(ctx); !errors.Is(err, errBad) || !errors.Is(err, slkafka.ErrRetriesExhausted) || n != 2 {
		t.Fatalf("run returned %v after %d attempts, want ErrRetriesExhausted wrapping the handler error after 2", err, n)
	}

	// A long backoff, interrupted by the stop: nil, and x is still there.
	slow := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithRetry(5, time.Hour, 0))
	tried := make(chan struct{}, 10)
	c, err = slow.Consumer("svc", []string{"orders"}, func(context.Context, *kgo.Record) error { tried <- struct{}{}; return errBad },
		kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	select {
	case <-tried:
	case <-time.After(20 * time.Second):
		t.Fatal("x not redelivered after the failed run")
	}
	if err := stop(); err != nil {
		t.Fatalf("stop during backoff: %v", err)
	}
	sn := newSeen()
	c, err = s.Consumer("svc", []string{"orders"}, handlerInto(sn, "svc"), kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	if got := sn.wait(t, 1); len(got) != 1 || got[0].value != "x" {
		t.Errorf("after the interrupted backoff the group got %+v, want x again", got)
	}
}

// Fetch errors reach the callback with the group, topic and partition;
// the consumer keeps going and loses nothing.
func TestConsumerReportsFetchErrors(t *testing.T) {
	c := fakeCluster(t, 1, allTopics...)
	addrs := c.ListenAddrs()
	// The first fetch of orders fails with an authorization error (franz-go
	// hands those to the poll), then the broker answers normally.
	var failed sync.Once
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		fr := req.(*kmsg.FetchRequest)
		handled := false
		var resp *kmsg.FetchResponse
		failed.Do(func() {
			resp = fr.ResponseKind().(*kmsg.FetchResponse)
			for _, rt := range fr.Topics {
				st := kmsg.NewFetchResponseTopic()
				st.Topic, st.TopicID = rt.Topic, rt.TopicID
				for _, rp := range rt.Partitions {
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition = rp.Partition
					sp.ErrorCode = 29 // TOPIC_AUTHORIZATION_FAILED
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			handled = true
		})
		if !handled {
			return nil, nil, false
		}
		return resp, nil, true
	})
	type fe struct {
		group, topic string
		partition    int32
		err          error
	}
	errs := make(chan fe, 16)
	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithFetchErrors(func(group, topic string, partition int32, err error) {
		errs <- fe{group, topic, partition, err}
	}))
	cl := newClient(t, addrs)
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sn := newSeen()
	cons, err := s.Consumer("svc", []string{"orders"}, handlerInto(sn, "svc"), kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, cons)
	select {
	case e := <-errs:
		if e.group != "svc" || e.topic != "orders" || e.partition != 0 || e.err == nil {
			t.Errorf("fetch error reported as %+v", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no fetch error reported")
	}
	if got := sn.wait(t, 1); len(got) != 1 || got[0].value != "x" {
		t.Errorf("after the fetch error the consumer got %+v, want x once", got)
	}
}
