package slnats_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/shadowlane/shadowlane"
	"github.com/shadowlane/shadowlane/adapters/slnats"
	"github.com/shadowlane/shadowlane/shadow"
	"github.com/shadowlane/shadowlane/shadow/bus/bustest"
)

// TestLostMarkGuard: unmarked publishes whose subject or headers are
// load-test data (testData:) are refused before they reach the server, on
// every publish path; a plain subscriber sees only the production
// messages, and the marked one on the shadow subject.
func TestLostMarkGuard(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		p := uniq()
		rt := bustest.TestDataRuntime(t, "")
		s := newShadow(t, slnats.WithShadowSubjects(p+".orders.>"), slnats.WithRuntime(rt))
		nc := connect(t, url)
		var (
			mu  sync.Mutex
			got []string
		)
		reader := connect(t, url)
		for _, subj := range []string{p + ".>", "shadow." + p + ".>"} {
			if _, err := reader.Subscribe(subj, func(m *natsgo.Msg) {
				mu.Lock()
				got = append(got, m.Subject+" "+string(m.Data))
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := reader.Flush(); err != nil {
			t.Fatal(err)
		}
		c := s.Conn(nc)
		js := jetStream(t, nc)
		bg := context.Background()
		attempts := []struct {
			name string
			send func() error
		}{
			{"Publish subject (fast path)", func() error { return c.Publish(bg, p+".orders.lt-1", []byte("w1")) }},
			{"Publish id in subject", func() error { return c.Publish(bg, p+".users.9000000001", []byte("w2")) }},
			{"PublishMsg header rule", func() error {
				return c.PublishMsg(bg, &natsgo.Msg{Subject: p + ".orders.new", Data: []byte("w3"), Header: natsgo.Header{"X-Test": {"1"}}})
			}},
			{"PublishMsg header value", func() error {
				return c.PublishMsg(bg, &natsgo.Msg{Subject: p + ".orders.new", Data: []byte("w4"), Header: natsgo.Header{"User": {"a", "lt-7"}}})
			}},
			{"RequestMsg", func() error {
				_, err := c.RequestMsg(bg, &natsgo.Msg{Subject: p + ".carts.lt-2", Data: []byte("w5")})
				return err
			}},
			{"JetStream", func() error {
				_, err := s.JetStream(js).Publish(bg, p+".orders.lt-3", []byte("w6"))
				return err
			}},
		}
		for _, a := range attempts {
			err := a.send()
			var se *shadow.Error
			if !errors.Is(err, shadow.ErrLostMark) || !errors.As(err, &se) || se.Store != "nats" {
				t.Errorf("%s: err = %v, want a nats *shadow.Error wrapping ErrLostMark", a.name, err)
			}
		}
		// data is not read; production and marked load-test data pass
		if err := c.Publish(bg, p+".orders.new", []byte("prod lt-1")); err != nil {
			t.Fatal(err)
		}
		if err := c.PublishMsg(bg, &natsgo.Msg{Subject: p + ".orders.new", Data: []byte("prod2"), Header: natsgo.Header{"User": {"u-7"}}}); err != nil {
			t.Fatal(err)
		}
		if err := c.PublishMsg(marked("r1", ""), &natsgo.Msg{Subject: p + ".orders.lt-1", Data: []byte("load"), Header: natsgo.Header{"X-Test": {"1"}}}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		want := []string{"shadow." + p + ".orders.lt-1 load", p + ".orders.new prod lt-1", p + ".orders.new prod2"} // sorted
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // anything extra shows up
		mu.Lock()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("subscribers got %q, want %q", got, want)
		}
		mu.Unlock()
		if n := rt.Stats().LostMarks["nats"]; n != int64(len(attempts)) {
			t.Fatalf("LostMarks = %v, want nats %d", rt.Stats().LostMarks, len(attempts))
		}

		// action alert: the publish goes through and is counted
		alert := bustest.TestDataRuntime(t, "alert")
		sa := newShadow(t, slnats.WithShadowSubjects(p+".orders.>"), slnats.WithRuntime(alert))
		if err := sa.Conn(nc).Publish(bg, p+".orders.lt-4", []byte("alerted")); err != nil {
			t.Fatal(err)
		}
		if n := alert.Stats().LostMarks["nats"]; n != 1 {
			t.Fatalf("alert LostMarks = %v", alert.Stats().LostMarks)
		}
	})
}

// BenchmarkPublishUnmarked: Conn.Publish and PublishMsg of an unmarked
// message, without testData (one pointer load) and with it. The server is
// embedded; the cost is dominated by the client's write buffer.
func BenchmarkPublishUnmarked(b *testing.B) {
	url := embedded(b)
	nc := connect(b, url)
	off, _ := shadowlane.New(shadowlane.Config{}, shadowlane.WithoutConfigFile())
	defer off.Close()
	bg := context.Background()
	for _, c := range []struct {
		name string
		rt   *shadowlane.Runtime
	}{{"off", off}, {"on", bustest.TestDataRuntime(b, "")}} {
		s := newShadow(b, slnats.WithShadowSubjects("orders.>"), slnats.WithRuntime(c.rt))
		conn := s.Conn(nc)
		b.Run(c.name+"/Publish", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := conn.Publish(bg, "orders.created.12345", []byte("v")); err != nil {
					b.Fatal(err)
				}
			}
		})
		h := natsgo.Header{"Trace": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
		b.Run(c.name+"/PublishMsg", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := conn.PublishMsg(bg, &natsgo.Msg{Subject: "orders.created.12345", Data: []byte("v"), Header: h}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
