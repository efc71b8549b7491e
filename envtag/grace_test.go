//go:build linux

package envtag_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// synBlackhole returns a loopback address whose TCP connects hang: a
// listening socket with a backlog of 0 that never accepts, its queue
// filled by one connection (further SYNs are dropped).
func synBlackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 3; i++ { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel keeps accepting connections on a backlog-0 socket: cannot make a connect hang")
	return ""
}

// The only proj-a instance never completes a TCP connect: a strict
// request fails with ErrNoLane after the connect grace instead of waiting
// out its deadline, and never reaches trunk. Next to a live instance of
// the lane, the hanging one is abandoned after the grace and the request
// is served by the live one.
func TestTransportConnectGrace(t *testing.T) {
	hole := synBlackhole(t)
	trunk, trunkHits := counting(t, "trunk")
	a, _ := counting(t, "proj-a")
	svc := uniq("orders")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {{Addr: addr(trunk)}, {Addr: hole, Env: "proj-a"}}})
	strict, _ := envtag.NewPolicy(envtag.Config{Strict: true, ConnectGrace: envtag.Duration(200 * time.Millisecond)})
	tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(strict))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	for i := 0; i < 5; i++ {
		got, err := get(t, c, "http://"+svc+"/", propagation.Mark{Env: "proj-a"}) // 5 s deadline
		if !errors.Is(err, envtag.ErrNoLane) {
			t.Fatalf("strict proj-a #%d with its only instance not connecting: %q, %v; want ErrNoLane before the deadline", i, got, err)
		}
	}
	if trunkHits.Load() != 0 {
		t.Fatalf("strict proj-a reached trunk")
	}
	if h := envtag.Health(svc); h.Ejections == 0 {
		t.Errorf("the hanging instance was not ejected: %+v", h)
	}

	svc2 := uniq("orders")
	reg.Set(svc2, []envtag.Endpoint{{Addr: addr(trunk)}, {Addr: hole, Env: "proj-a"}, {Addr: addr(a), Env: "proj-a"}})
	tr2 := envtag.NewTransport(reg, envtag.WithServices(svc2), envtag.WithPolicy(strict))
	defer tr2.Close()
	c2 := &http.Client{Transport: tr2}
	for i := 0; i < 10; i++ {
		got, err := get(t, c2, "http://"+svc2+"/", propagation.Mark{Env: "proj-a"})
		if err != nil || !strings.HasPrefix(got, "proj-a ") {
			t.Fatalf("proj-a #%d next to a hanging instance: %q, %v", i, got, err)
		}
	}
	if h := envtag.Health(svc2); h.Retries == 0 {
		t.Errorf("no retry counted: %+v", h)
	}
}
