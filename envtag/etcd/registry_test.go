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
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/envtag/etcd"
	"github.com/shadowlane/shadowlane/propagation"
)

func freeURL(t *testing.T) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// startEtcd runs an embedded single-node etcd on loopback (random ports,
// temp dir) and returns a client for it.
func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "error"
	peer, client := freeURL(t), freeURL(t)
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(15 * time.Second):
		t.Fatal("embedded etcd not ready in 15s")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client.Host}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func next(t *testing.T, ch <-chan []envtag.Endpoint, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var last []envtag.Endpoint
	for {
		select {
		case eps := <-ch:
			last = eps
			if fmt.Sprint(eps) == want {
				return
			}
		case <-timeout:
			t.Fatalf("endpoints %v, want %s", last, want)
		}
	}
}

func named(t *testing.T, name string) (*httptest.Server, string) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s, strings.TrimPrefix(s.URL, "http://")
}

func TestEtcdRegistry(t *testing.T) {
	cli := startEtcd(t)
	prefix := fmt.Sprintf("/test-%x/", rand.Uint32())
	reg := etcd.New(cli, etcd.WithPrefix(prefix), etcd.WithRetry(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, trunkAddr := named(t, "trunk")
	_, projAddr := named(t, "proj-a")
	stopTrunk, err := reg.Register(ctx, "orders", "trunk-1", envtag.Endpoint{Addr: trunkAddr}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stopTrunk(context.Background())

	updates := make(chan []envtag.Endpoint, 100)
	if err := reg.Watch(ctx, "orders", func(e []envtag.Endpoint) { updates <- e }); err != nil {
		t.Fatal(err)
	}
	next(t, updates, fmt.Sprint([]envtag.Endpoint{{Addr: trunkAddr}}))

	// Routing through the HTTP transport follows the registry.
	tr := envtag.NewTransport(reg, envtag.WithServices("orders"))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	get := func(tag string) string {
		req, _ := http.NewRequestWithContext(propagation.With(ctx, propagation.Mark{Env: tag}), "GET", "http://orders/", nil)
		resp, err := c.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("proj-a"); got != "trunk" {
		t.Fatalf("proj-a before its instance registered: %q", got)
	}

	stopProj, err := reg.Register(ctx, "orders", "proj-a-1", envtag.Endpoint{Addr: projAddr, Env: "proj-a"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	next(t, updates, fmt.Sprint([]envtag.Endpoint{{Addr: projAddr, Env: "proj-a"}, {Addr: trunkAddr}}))
	waitFor(t, func() bool { return get("proj-a") == "proj-a" })
	if got := get(""); got != "trunk" {
		t.Fatalf("untagged: %q", got)
	}

	// A value that is not a valid endpoint is ignored, never trunk.
	if _, err := cli.Put(ctx, prefix+"orders/rogue", `{"addr":"127.0.0.1:1","env":"bad label"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"orders/garbage", `not json`); err != nil {
		t.Fatal(err)
	}
	// The proj-a instance goes away: its share goes back to trunk.
	if err := stopProj(ctx); err != nil {
		t.Fatal(err)
	}
	next(t, updates, fmt.Sprint([]envtag.Endpoint{{Addr: trunkAddr}}))
	waitFor(t, func() bool { return get("proj-a") == "trunk" })

	// Trunk goes away too: untagged fails, it is not sent anywhere.
	if err := stopTrunk(ctx); err != nil {
		t.Fatal(err)
	}
	next(t, updates, "[]")
	waitFor(t, func() bool { return strings.HasPrefix(get(""), "error:") })
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://orders/", nil)
	if _, err := c.Do(req); !errors.Is(err, envtag.ErrNoLane) {
		t.Fatalf("no trunk: %v", err)
	}
}

func TestEtcdRegisterValidates(t *testing.T) {
	reg := etcd.New(nil)
	ctx := context.Background()
	for _, ep := range []envtag.Endpoint{{Addr: ""}, {Addr: "x:1", Env: "bad label"}} {
		if _, err := reg.Register(ctx, "orders", "i1", ep, time.Second); err == nil {
			t.Errorf("endpoint %+v accepted", ep)
		}
	}
	if _, err := reg.Register(ctx, "a/b", "i1", envtag.Endpoint{Addr: "x:1"}, time.Second); err == nil {
		t.Error("service with / accepted")
	}
	if err := reg.Watch(ctx, "", func([]envtag.Endpoint) {}); err == nil {
		t.Error("empty service accepted")
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}
