package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/envtag/etcd"
	"github.com/shadowlane/shadowlane/propagation"
)

// node is an embedded single-node etcd that can be stopped and started
// again on the same data directory and ports (an etcd restart).
type node struct {
	t            *testing.T
	dir          string
	peer, client url.URL
	e            *embed.Etcd
}

func newNode(t *testing.T) *node {
	n := &node{t: t, dir: t.TempDir(), peer: freeURL(t), client: freeURL(t)}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = n.dir
	cfg.LogLevel = "error"
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{n.peer}, []url.URL{n.peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{n.client}, []url.URL{n.client}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	var err error
	for i := 0; i < 50; i++ { // the ports may take a moment to be free again
		if n.e, err = embed.StartEtcd(cfg); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatalf("embedded etcd: %v", err)
	}
	select {
	case <-n.e.Server.ReadyNotify():
	case <-time.After(15 * time.Second):
		n.t.Fatal("embedded etcd not ready in 15s")
	}
}

func (n *node) stop() {
	if n.e != nil {
		n.e.Close()
		n.e = nil
	}
}

// client returns a client of the node, through addr when given (a proxy).
func (n *node) newClient(addr string) *clientv3.Client {
	n.t.Helper()
	if addr == "" {
		addr = n.client.Host
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, DialTimeout: 2 * time.Second,
		DialKeepAliveTime: time.Second, DialKeepAliveTimeout: time.Second})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { cli.Close() })
	return cli
}

// instance is a real HTTP server on loopback that answers with the
// environment it runs in (which may change: a restart under a new label).
type instance struct {
	srv  *httptest.Server
	addr string
	env  atomic.Value // string
}

func newInstance(t *testing.T, env string) *instance {
	in := &instance{}
	in.env.Store(env)
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "env="+in.env.Load().(string))
	}))
	in.addr = strings.TrimPrefix(in.srv.URL, "http://")
	t.Cleanup(in.srv.Close)
	return in
}

// traffic sends requests tagged "", proj-a and proj-b through c until
// stopped and records every answer: an untagged request answered by a
// project instance, or a tagged one answered by another project's
// instance, is a violation.
type traffic struct {
	untaggedOnProject, crossProject, ok, failed atomic.Int64
	stop                                        chan struct{}
	wg                                          sync.WaitGroup
	mu                                          sync.Mutex
	examples                                    []string
}

func startTraffic(c *http.Client, service string, workers int) *traffic {
	tf := &traffic{stop: make(chan struct{})}
	tags := []string{"", "proj-a", "proj-b", "proj-c"}
	for w := 0; w < workers; w++ {
		tf.wg.Add(1)
		go func(w int) {
			defer tf.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-tf.stop:
					return
				default:
				}
				tag := tags[(i+w)%len(tags)]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				req, _ := http.NewRequestWithContext(propagation.With(ctx, propagation.Mark{Env: tag}), "GET", "http://"+service+"/", nil)
				resp, err := c.Do(req)
				if err != nil {
					cancel()
					if tf.failed.Add(1) < 3 {
						tf.note(fmt.Sprintf("%s: %v", tag, err))
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				got, _ := strings.CutPrefix(string(b), "env=")
				switch {
				case tag == "" && got != "":
					tf.untaggedOnProject.Add(1)
					tf.note(fmt.Sprintf("untagged request served by %q", got))
				case tag != "" && got != "" && got != tag:
					tf.crossProject.Add(1)
					tf.note(fmt.Sprintf("%s request served by %q", tag, got))
				default:
					tf.ok.Add(1)
				}
			}
		}(w)
	}
	return tf
}

func (tf *traffic) note(s string) {
	tf.mu.Lock()
	if len(tf.examples) < 5 {
		tf.examples = append(tf.examples, s)
	}
	tf.mu.Unlock()
}

func (tf *traffic) finish(t *testing.T) {
	t.Helper()
	close(tf.stop)
	tf.wg.Wait()
	t.Logf("requests: %d served correctly, %d failed, %d untagged on a project instance, %d cross-project (%q)",
		tf.ok.Load(), tf.failed.Load(), tf.untaggedOnProject.Load(), tf.crossProject.Load(), tf.examples)
	if tf.untaggedOnProject.Load() != 0 || tf.crossProject.Load() != 0 {
		t.Errorf("isolation violated: %d untagged on a project instance, %d cross-project; e.g. %v",
			tf.untaggedOnProject.Load(), tf.crossProject.Load(), tf.examples)
	}
}

func served(c *http.Client, service, tag string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(propagation.With(ctx, propagation.Mark{Env: tag}), "GET", "http://"+service+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func eventually(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in %v", what, d)
		}
	}
}

var lastTransport *envtag.Transport

func setup(t *testing.T, cli *clientv3.Client, opts ...etcd.Option) (*etcd.Registry, string, *http.Client) {
	prefix := fmt.Sprintf("/faults-%x/", rand.Uint32())
	reg := etcd.New(cli, append([]etcd.Option{etcd.WithPrefix(prefix), etcd.WithRetry(50 * time.Millisecond)}, opts...)...)
	tr := envtag.NewTransport(reg, envtag.WithServices("orders"), envtag.WithPolicy(&envtag.Policy{}))
	t.Cleanup(func() { tr.Close() })
	lastTransport = tr
	return reg, prefix, &http.Client{Transport: tr}
}

// An instance's lease is lost while the instance lives (expired in a
// partition, revoked by someone): routing follows at once (its tag goes to
// trunk, never elsewhere), and the registration is written again so the
// living instance comes back.
func TestLeaseLostRegistersAgain(t *testing.T) {
	n := newNode(t)
	cli := n.newClient("")
	reg, prefix, c := setup(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trunk, a := newInstance(t, ""), newInstance(t, "proj-a")
	if _, err := reg.Register(ctx, "orders", "trunk-1", envtag.Endpoint{Addr: trunk.addr}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, "orders", "a-1", envtag.Endpoint{Addr: a.addr, Env: "proj-a"}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "proj-a routed", 5*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=proj-a" })
	tf := startTraffic(c, "orders", 4)

	// The lease vanishes (as when it expires): the key goes with it.
	resp, err := cli.Get(ctx, prefix+"orders/a-1")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("registration: %v %v", resp, err)
	}
	lost := time.Now()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	// Written again under a new lease; routing follows it back.
	eventually(t, "proj-a registered again", 10*time.Second, func() bool {
		r, err := cli.Get(ctx, prefix+"orders/a-1")
		return err == nil && len(r.Kvs) == 1 && r.Kvs[0].Lease != resp.Kvs[0].Lease
	})
	eventually(t, "proj-a routed again", 5*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=proj-a" })
	t.Logf("lease lost -> routed again in %v", time.Since(lost).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	tf.finish(t)
}

// etcd stops for longer than the leases' TTL and starts again: during the
// outage routing keeps the last set (untagged never on a project
// instance); afterwards both instances are still registered (their
// keepalives gave up during the outage and the registrations are written
// again) and new instances are followed.
func TestEtcdRestart(t *testing.T) {
	n := newNode(t)
	cli := n.newClient("")
	reg, _, c := setup(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trunk, a, b := newInstance(t, ""), newInstance(t, "proj-a"), newInstance(t, "proj-b")
	for id, ep := range map[string]envtag.Endpoint{"trunk-1": {Addr: trunk.addr}, "a-1": {Addr: a.addr, Env: "proj-a"}} {
		if _, err := reg.Register(ctx, "orders", id, ep, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "proj-a routed", 5*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=proj-a" })
	tf := startTraffic(c, "orders", 4)

	n.stop()
	time.Sleep(4 * time.Second) // longer than the TTL: the keepalives give up
	if got := served(c, "orders", ""); got != "env=" {
		t.Errorf("untagged during the outage: %q; want trunk from the last set", got)
	}
	n.start()
	restarted := time.Now()
	// Registrations survive well past a TTL after the restart.
	time.Sleep(5 * time.Second)
	for _, tag := range []string{"proj-a", ""} {
		want := "env=" + tag
		eventually(t, "tag "+tag+" after the restart", 5*time.Second, func() bool { return served(c, "orders", tag) == want })
	}
	// A new instance after the restart is followed.
	if _, err := reg.Register(ctx, "orders", "b-1", envtag.Endpoint{Addr: b.addr, Env: "proj-b"}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "proj-b routed", 5*time.Second, func() bool { return served(c, "orders", "proj-b") == "env=proj-b" })
	t.Logf("restart -> routing follows; checked %v after the restart", time.Since(restarted).Round(time.Millisecond))
	tf.finish(t)
}

// proxy is a TCP proxy on loopback that can be cut (every connection
// closed, new ones refused) and restored on the same address: a watch
// that loses its connection.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	lis    net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = lis.Addr().String()
	p.serve(lis)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(lis net.Listener) {
	p.mu.Lock()
	p.lis = lis
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if lis, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.serve(lis)
}

// The watcher loses its connection; meanwhile instances change and the
// history is compacted past the watch's revision. When the connection is
// back the watch cannot resume (compacted): the registry reads everything
// again and routing follows. During the gap the last set stays in force
// and no untagged request reaches a project instance.
func TestWatchReconnectAfterCompaction(t *testing.T) {
	n := newNode(t)
	direct := n.newClient("")
	px := newProxy(t, n.client.Host)
	watcher := n.newClient(px.addr)
	var errs []string
	var emu sync.Mutex
	reg, prefix, c := setup(t, watcher, etcd.WithOnError(func(err error) {
		emu.Lock()
		errs = append(errs, err.Error())
		emu.Unlock()
	}))
	writer := etcd.New(direct, etcd.WithPrefix(prefix), etcd.WithRetry(50*time.Millisecond))
	_ = reg
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trunk, a, b := newInstance(t, ""), newInstance(t, "proj-a"), newInstance(t, "proj-b")
	if _, err := writer.Register(ctx, "orders", "trunk-1", envtag.Endpoint{Addr: trunk.addr}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	stopA, err := writer.Register(ctx, "orders", "a-1", envtag.Endpoint{Addr: a.addr, Env: "proj-a"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "proj-a routed", 5*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=proj-a" })
	tf := startTraffic(c, "orders", 4)

	px.cut()
	if err := stopA(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Register(ctx, "orders", "b-1", envtag.Endpoint{Addr: b.addr, Env: "proj-b"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ { // history to compact
		if _, err := direct.Put(ctx, prefix+"other/k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := direct.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Compact(ctx, r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := served(c, "orders", "proj-a"); got != "env=proj-a" {
		t.Errorf("proj-a during the gap: %q; want the last set (proj-a)", got)
	}
	px.restore()
	eventually(t, "proj-b routed after the reconnect", 15*time.Second, func() bool { return served(c, "orders", "proj-b") == "env=proj-b" })
	eventually(t, "proj-a gone after the reconnect", 5*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=" })
	tf.finish(t)
	emu.Lock()
	t.Logf("registry reported: %q", errs)
	emu.Unlock()
}

// An instance restarts under a new label while its old key still lives
// (it crashed: no revoke, the lease has not expired yet): its address is
// claimed as trunk and as proj-a. The registry withholds the address
// until the old claim expires: untagged requests never reach the instance
// that now serves proj-a; then routing follows the new label.
func TestRelabelWithLiveOldKey(t *testing.T) {
	n := newNode(t)
	cli := n.newClient("")
	var conflicts atomic.Int64
	reg, _, c := setup(t, cli, etcd.WithOnError(func(err error) {
		if errors.Is(err, envtag.ErrConflict) {
			conflicts.Add(1)
		}
	}))
	trunk, x := newInstance(t, ""), newInstance(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := reg.Register(ctx, "orders", "trunk-1", envtag.Endpoint{Addr: trunk.addr}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	xctx, crash := context.WithCancel(ctx)
	if _, err := reg.Register(xctx, "orders", "x-old", envtag.Endpoint{Addr: x.addr}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tr := lastTransport
	eventually(t, "two trunk instances", 5*time.Second, func() bool {
		p, err := tr.Pool(ctx, "orders")
		return err == nil && p.Ready("") == 2
	})
	tf := startTraffic(c, "orders", 4)
	time.Sleep(200 * time.Millisecond)

	// The old process dies without revoking its lease; the new one
	// registers under proj-a, then serves on the same address.
	crash()
	x.srv.Close()
	crashed := time.Now()
	if _, err := reg.Register(ctx, "orders", "x-new", envtag.Endpoint{Addr: x.addr, Env: "proj-a"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "x-new seen by the transport", 5*time.Second, func() bool {
		p, err := tr.Pool(ctx, "orders")
		// the conflict (withheld), or x listed under proj-a too
		return err == nil && (conflicts.Load() > 0 || p.Ready("proj-a") != 0)
	})
	if conflicts.Load() == 0 {
		t.Error("the conflict was not reported")
	}
	time.Sleep(100 * time.Millisecond) // the report precedes the update by a few instructions
	lis, err := net.Listen("tcp", x.addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", x.addr, err)
	}
	x2 := &httptest.Server{Listener: lis, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "env=proj-a")
	})}}
	x2.Start()
	defer x2.Close()
	eventually(t, "proj-a routed to the relabelled instance", 15*time.Second, func() bool { return served(c, "orders", "proj-a") == "env=proj-a" })
	t.Logf("relabel: routed as proj-a %v after the crash", time.Since(crashed).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond)
	tf.finish(t)
}
