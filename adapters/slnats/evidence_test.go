package slnats_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slnats"
)

// Embedded and loopback NATS: a JetStream consumer counts each marked
// message it hands to its handler once (its first delivery) as an entry
// "nats:<first subject token>" of the run, route the durable name, and a
// message that failed on its last delivery as "nats handler"; a core
// subscription counts its marked messages the same way (route: the
// subject); a marked publish that fails counts "nats publish".
// Production messages leave no evidence.
func TestRunEvidence(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		rt, err := shadowlane.New(shadowlane.Config{Service: "billing", Trust: shadowlane.TrustConfig{Mode: "internal"}}, shadowlane.WithoutDefault())
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close()
		var refused atomic.Int64
		s := newShadow(t, slnats.WithAll(), slnats.WithRuntime(rt), slnats.WithRefused(func(context.Context, *natsgo.Msg, error) { refused.Add(1) }))
		js, stream, subj := jsSetup(t, url, s)
		p := strings.SplitN(subj, ".", 2)[0]
		j := s.JetStream(js)
		for _, v := range []string{"l1", "l2", "lfail"} {
			if _, err := j.Publish(marked("nats-r1", ""), subj, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []string{"p1", "pfail"} {
			if _, err := j.Publish(context.Background(), subj, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		// No stream takes this subject's shadow: no responders.
		short, cancel := context.WithTimeout(marked("nats-r1", ""), 2*time.Second)
		defer cancel()
		if _, err := j.Publish(short, p+"x.nostream", []byte("x")); err == nil {
			t.Fatal("a JetStream publish without a stream succeeded")
		}

		var calls atomic.Int64
		c, err := s.ConsumeJetStream(context.Background(), js, stream, jetstream.ConsumerConfig{Durable: "work", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2},
			func(_ context.Context, msg jetstream.Msg) error {
				calls.Add(1)
				if strings.Contains(string(msg.Data()), "fail") {
					return errors.New("handler bug")
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop()
		nc := connect(t, url)
		conn := s.Conn(nc)
		var core atomic.Int64
		sub, err := conn.Subscribe(p+".events", func(context.Context, *natsgo.Msg) { core.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		nc.Flush()
		for _, ctx := range []context.Context{marked("nats-r1", ""), marked("nats-r1", ""), context.Background()} {
			if err := conn.Publish(ctx, p+".events", []byte("e")); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for refused.Load() < 2 || calls.Load() < 7 || core.Load() < 3 { // 3 that succeed, 2 delivered twice; 3 core
			if time.Now().After(deadline) {
				t.Fatalf("refused %d, handler calls %d, core %d", refused.Load(), calls.Load(), core.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
		ev := rt.RunStatus("nats-r1")
		wantEntries := []shadowlane.RunEntry{{Entry: "nats:" + p, Route: p + ".events", Marked: 2}, {Entry: "nats:" + p, Route: "work", Marked: 3}}
		if !slices.Equal(ev.Entries, wantEntries) {
			t.Fatalf("entries %+v", ev.Entries)
		}
		if want := []shadowlane.RunErrorRows{{Reason: "nats handler", N: 1}, {Reason: "nats publish", N: 1}}; !slices.Equal(ev.Errors, want) {
			t.Fatalf("errors %+v", ev.Errors)
		}
		if len(rt.Runs()) != 1 {
			t.Fatalf("runs %q", rt.Runs())
		}
	})
}
