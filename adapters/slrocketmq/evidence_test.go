package slrocketmq_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slrocketmq"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus"
)

// Through the fixture: the push consumer counts each marked message it
// hands to its callback once as an entry "rocketmq:<production topic>"
// (route: the production group), whether it was handled at once, after a
// failed first attempt, or after the kill switch held it back and handed
// it back to the broker; a marked message whose callback fails on its last
// reconsume attempt (it goes to the dead-letter topic) counts one
// "rocketmq handler" error; a marked send the broker refuses counts
// "rocketmq publish"; a refused message is a decision, not an error.
// Production messages leave no evidence.
func TestRunEvidence(t *testing.T) {
	srv := fixture(t, "orders", "orders_shadow", "nosuch") // no "nosuch_shadow"
	rt := testRuntime(t)
	s := newShadow(t, slrocketmq.WithShadowTopics("orders", "nosuch"), slrocketmq.WithShadowGroups("billing"),
		slrocketmq.WithRuntime(rt), slrocketmq.WithHold(50*time.Millisecond))
	p := newProducer(t, s, srv)
	raw := newProducer(t, nil, srv)

	var mu sync.Mutex
	calls := map[string]int{}
	startConsumer(t, srv, s, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		res := consumer.ConsumeSuccess
		for _, m := range msgs {
			b := string(m.Body)
			calls[b]++
			if strings.Contains(b, "fail") || (b == "flaky" && calls[b] == 1) {
				res = consumer.ConsumeRetryLater
			}
		}
		return res, nil
	}, consumer.WithMaxReconsumeTimes(1))

	lt := marked("rmq-r1", "")
	for _, b := range []string{"l1", "l2", "lfail", "flaky"} {
		if _, err := p.SendSync(lt, msg("orders", b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"p1", "pfail"} {
		if _, err := p.SendSync(context.Background(), msg("orders", b)); err != nil {
			t.Fatal(err)
		}
	}
	// a run mark on a production topic: refused, a decision only
	if _, err := raw.SendSync(context.Background(), msg("orders", "anomaly", bus.HeaderRun, "rmq-r1")); err != nil {
		t.Fatal(err)
	}
	// the broker has no shadow twin of "nosuch": the send fails
	if _, err := p.SendSync(lt, msg("nosuch", "x")); err == nil {
		t.Fatal("a marked send to a topic the broker does not have succeeded")
	}
	// a configuration refusal is not a publish error
	var se *shadow.Error
	if _, err := p.SendSync(lt, msg("unshadowed", "x")); !errors.As(err, &se) {
		t.Fatalf("marked send without a twin: %v", err)
	}

	count := func(b string) int { mu.Lock(); defer mu.Unlock(); return calls[b] }
	waitFor(t, "every message handled or dead-lettered", func() bool {
		return count("l1") >= 1 && count("l2") >= 1 && count("flaky") >= 2 &&
			len(srv.Messages("%DLQ%billing_shadow")) == 1 && len(srv.Messages("%DLQ%billing")) == 1
	})
	retried := len(srv.Messages("%RETRY%billing_shadow")) // lfail and flaky once each

	// held back once while the kill switch is off, then handled
	rt.SetLoadTest(false, "test")
	if _, err := p.SendSync(lt, msg("orders", "held")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held message handed back", func() bool { return len(srv.Messages("%RETRY%billing_shadow")) > retried })
	if n := count("held"); n != 0 {
		t.Fatalf("held handed over %d times while the switch was off", n)
	}
	rt.SetLoadTest(true, "")
	waitFor(t, "the held message handled", func() bool { return count("held") == 1 })
	time.Sleep(200 * time.Millisecond) // a late extra count would show by now

	ev := rt.RunStatus("rmq-r1")
	if want := []shadowlane.RunEntry{{Entry: "rocketmq:orders", Route: "billing", Marked: 5}}; !slices.Equal(ev.Entries, want) {
		t.Errorf("entries %+v, want %+v", ev.Entries, want)
	}
	if want := []shadowlane.RunErrorRows{{Reason: "rocketmq handler", N: 1}, {Reason: "rocketmq publish", N: 1}}; !slices.Equal(ev.Errors, want) {
		t.Errorf("errors %+v, want %+v", ev.Errors, want)
	}
	if got := count("lfail"); got != 2 {
		t.Errorf("lfail handed over %d times, want 2 (max reconsume 1)", got)
	}
	if runs := rt.Runs(); len(runs) != 1 {
		t.Errorf("runs %q", runs)
	}
}
