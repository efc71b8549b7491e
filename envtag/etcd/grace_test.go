package etcd_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/envtag/etcd"
)

// The etcd restart gap: after an etcd restart longer than the leases'
// TTL, the restored old leases expire (their keys are deleted) before the
// registering clients, reconnecting with gRPC's backoff, have written the
// keys again under new leases. A watcher then saw every instance leave
// and come back a moment later, and tagged calls failed with ErrNoLane in
// between (1 in 10 restart runs: 667 of them). Here the old leases are
// revoked and the keys written again under new leases, as the clients do
// after such a restart: with the delete grace no delivered set lacks an
// instance. A key that does not come back leaves once its grace ends.
func TestDeleteGraceBridgesReRegistration(t *testing.T) {
	cli := startEtcd(t)
	prefix := fmt.Sprintf("/grace-%x/", rand.Uint32())
	reg := etcd.New(cli, etcd.WithPrefix(prefix), etcd.WithRetry(50*time.Millisecond), etcd.WithDeleteGrace(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	trunk := envtag.Endpoint{Addr: "127.0.0.1:7001"}
	proj := envtag.Endpoint{Addr: "127.0.0.1:7002", Env: "proj-a"}
	put := func(id string, ep envtag.Endpoint) clientv3.LeaseID {
		t.Helper()
		l, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		v := fmt.Sprintf(`{"addr":%q,"env":%q}`, ep.Addr, ep.Env)
		if _, err := cli.Put(ctx, prefix+"orders/"+id, v, clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	oldT, oldP := put("trunk-1", trunk), put("a-1", proj)

	var (
		mu   sync.Mutex
		sets [][]envtag.Endpoint
	)
	if err := reg.Watch(ctx, "orders", func(eps []envtag.Endpoint) {
		mu.Lock()
		sets = append(sets, eps)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	full := fmt.Sprint([]envtag.Endpoint{proj, trunk})
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(sets) == 0 {
			return ""
		}
		return fmt.Sprint(sets[len(sets)-1])
	}
	waitFor(t, func() bool { return last() == full })

	// The old leases expire (revoked here), then the clients write their
	// keys again under new leases.
	for _, l := range []clientv3.LeaseID{oldT, oldP} {
		if _, err := cli.Revoke(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	put("trunk-1", trunk)
	newP := put("a-1", proj)
	time.Sleep(1500 * time.Millisecond) // past the grace: a held removal would have been delivered
	mu.Lock()
	for i, eps := range sets {
		if fmt.Sprint(eps) != full {
			t.Errorf("set %d delivered during the re-registration: %v, want %s throughout", i, eps, full)
		}
	}
	mu.Unlock()

	// proj-a goes for good: routing follows once its grace ends.
	if _, err := cli.Revoke(ctx, newP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return last() == fmt.Sprint([]envtag.Endpoint{trunk}) })
}
