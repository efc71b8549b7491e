package slkafka_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/shadowlane/shadowlane/adapters/slkafka"
)

// A group coordinator that is briefly unreachable (a broker restarting, a
// proxy dropping its connections: the connection is cut in the middle of
// a commit and dials are refused for a moment) does not stop the consumer:
// it tries the commit again, every record is handled once, and the broker
// has the group committed to the end of the topic. Judged from the broker
// by an admin client.
func TestCommitRetriesTransientFailures(t *testing.T) {
	c := fakeCluster(t, 1, "orders", "orders_shadow")
	addrs := c.ListenAddrs()

	// The first commit of group "svc" takes the coordinator away: the
	// consumer's connections are cut and its dials refused for 1.5s.
	var (
		failed atomic.Int32
		downTo atomic.Int64 // unix nanos until which dials fail
		connMu sync.Mutex
		conns  []net.Conn
	)
	dialer := func(ctx context.Context, network, host string) (net.Conn, error) {
		if time.Now().UnixNano() < downTo.Load() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, network, host)
		if err == nil {
			connMu.Lock()
			conns = append(conns, conn)
			connMu.Unlock()
		}
		return conn, err
	}
	controlCommits(c, "svc", func(*kmsg.OffsetCommitRequest) bool { return failed.CompareAndSwap(0, 1) }, func(*kmsg.OffsetCommitRequest) (kmsg.Response, error) {
		downTo.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
		connMu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		conns = nil
		connMu.Unlock()
		return nil, errors.New("coordinator gone")
	})

	s := newShadow(t, slkafka.WithShadowTopics("orders"), slkafka.WithShadowGroups("svc"))
	p, err := s.Producer(newClient(t, addrs))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "c-%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string]int{}
	all := make(chan struct{})
	cons, err := s.Consumer("svc", []string{"orders"}, func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		handled[string(r.Value)]++
		if len(handled) == n {
			select {
			case <-all:
			default:
				close(all)
			}
		}
		return nil
	}, kgo.SeedBrokers(addrs...), kgo.FetchMaxWait(100*time.Millisecond), kgo.Dialer(dialer))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	select {
	case <-all:
	case err := <-done:
		t.Fatalf("Run returned %v before handling every record", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not every record handled within 60s")
	}

	// The broker: group "svc" committed up to the end of "orders".
	adm := kadm.NewClient(newClient(t, addrs))
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v after %d rejected commits", err, failed.Load())
		default:
		}
		offs, err := adm.FetchOffsets(context.Background(), "svc")
		if err == nil {
			if o, ok := offs.Lookup("orders", 0); ok && o.At == n {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group svc not committed to %d within 60s: %v %v", n, offs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if failed.Load() != 1 {
		t.Error("the outage never happened (the control did not see the consumer's commits)")
	}
	mu.Lock()
	defer mu.Unlock()
	for v, k := range handled {
		if k != 1 {
			t.Errorf("%s handled %d times, want once", v, k)
		}
	}
}
