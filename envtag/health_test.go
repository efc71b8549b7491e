package envtag_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// deadAddr returns a loopback address nothing listens on (connection
// refused).
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

// counting starts a named server that counts its requests.
func counting(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name+" "+r.Host)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func do(c *http.Client, method, url string, m propagation.Mark, body io.Reader) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(propagation.With(ctx, m), method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A dead instance next to a live one of the same lane costs no failed
// request: the failed connection is retried on the live instance of the
// SAME lane, the dead one is ejected, re-probed and readmitted when it is
// back. Requests never cross lanes.
func TestTransportPassiveHealth(t *testing.T) {
	trunk, _ := counting(t, "trunk")
	a1, _ := counting(t, "proj-a")
	deadTrunk, deadA := deadAddr(t), deadAddr(t)
	svc := uniq("orders")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {
		{Addr: addr(trunk)}, {Addr: deadTrunk},
		{Addr: addr(a1), Env: "proj-a"}, {Addr: deadA, Env: "proj-a"},
	}})
	tr := envtag.NewTransport(reg, envtag.WithServices(svc),
		envtag.WithHealth(envtag.HealthConfig{Ejection: 100 * time.Millisecond, MaxEjection: 200 * time.Millisecond}))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	before := envtag.Health(svc)

	for i := 0; i < 100; i++ {
		for _, tc := range []struct {
			method string
			tag    string
			want   string
		}{{"GET", "", "trunk"}, {"GET", "proj-a", "proj-a"}, {"POST", "", "trunk"}, {"POST", "proj-a", "proj-a"}} {
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("payload") // replayable: GetBody set
			}
			got, err := do(c, tc.method, "http://"+svc+"/", propagation.Mark{Env: tc.tag}, body)
			if err != nil || !strings.HasPrefix(got, tc.want+" ") {
				t.Fatalf("%s tag %q #%d: %q, %v; want %s (dead instance of the same lane must be retried around)", tc.method, tc.tag, i, got, err, tc.want)
			}
		}
	}
	h := envtag.Health(svc)
	if d := h.Ejections - before.Ejections; d < 2 {
		t.Errorf("ejections +%d, want >= 2 (both dead instances)", d)
	}
	if d := h.Retries - before.Retries; d < 2 {
		t.Errorf("retries +%d, want >= 2", d)
	}
	// Ejected for good while dead: far fewer connection failures than
	// requests (re-probes are TCP connects, not requests).
	if d := h.ConnFailures - before.ConnFailures; d < 2 || d > 40 {
		t.Errorf("connection failures +%d over 400 requests, want 2..40", d)
	}
	t.Logf("400 requests: %d connection failures, %d ejections, %d retries, 0 failed requests",
		h.ConnFailures-before.ConnFailures, h.Ejections-before.Ejections, h.Retries-before.Retries)

	// The dead proj-a instance comes back on its address: re-probed and
	// readmitted, it gets proj-a traffic again (and never untagged).
	l, err := net.Listen("tcp", deadA)
	if err != nil {
		t.Skipf("cannot reuse %s: %v", deadA, err)
	}
	back := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "proj-a2 "+r.Host)
	})}}
	back.Start()
	defer back.Close()
	waitFor(t, func() bool {
		got, _ := do(c, "GET", "http://"+svc+"/", propagation.Mark{Env: "proj-a"}, nil)
		return strings.HasPrefix(got, "proj-a2 ")
	})
	if envtag.Health(svc).Readmissions == before.Readmissions {
		t.Error("readmission not counted")
	}
	for i := 0; i < 50; i++ {
		if got, err := do(c, "GET", "http://"+svc+"/", propagation.Mark{}, nil); err != nil || !strings.HasPrefix(got, "trunk ") {
			t.Fatalf("untagged: %q, %v", got, err)
		}
	}
}

// The only instance of a lane is dead: a retry never crosses to another
// lane. Strict: the request fails (connection error, then ErrNoLane once
// the instance is ejected), never served by trunk. Non-strict: once
// ejected, the configured fallback rule applies (trunk).
func TestTransportHealthNeverCrossesLanes(t *testing.T) {
	trunk, trunkHits := counting(t, "trunk")
	b, _ := counting(t, "proj-b")
	deadA := deadAddr(t)
	svc := uniq("orders")
	eps := []envtag.Endpoint{{Addr: addr(trunk)}, {Addr: deadA, Env: "proj-a"}, {Addr: addr(b), Env: "proj-b"}}
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: eps})
	strict, _ := envtag.NewPolicy(envtag.Config{Strict: true})
	hc := envtag.HealthConfig{Ejection: time.Hour}
	st := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(strict), envtag.WithHealth(hc))
	defer st.Close()
	sc := &http.Client{Transport: st}
	var connErrs, noLane int
	for i := 0; i < 20; i++ {
		got, err := do(sc, "GET", "http://"+svc+"/", propagation.Mark{Env: "proj-a"}, nil)
		switch {
		case err == nil:
			t.Fatalf("strict proj-a with its only instance dead served by %q", got)
		case errors.Is(err, envtag.ErrNoLane):
			noLane++
		default:
			connErrs++
		}
	}
	if trunkHits.Load() != 0 {
		t.Fatalf("strict proj-a requests reached trunk %d times", trunkHits.Load())
	}
	if connErrs > 2 || noLane < 18 {
		t.Fatalf("strict: %d connection errors, %d ErrNoLane; want the dead instance ejected after 2 failures", connErrs, noLane)
	}

	lax := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(&envtag.Policy{}), envtag.WithHealth(hc))
	defer lax.Close()
	lc := &http.Client{Transport: lax}
	for i := 0; i < 20; i++ {
		got, err := do(lc, "GET", "http://"+svc+"/", propagation.Mark{Env: "proj-a"}, nil)
		if strings.HasPrefix(got, "proj-b ") {
			t.Fatalf("proj-a request served by proj-b")
		}
		if i >= 2 && (err != nil || !strings.HasPrefix(got, "trunk ")) {
			t.Fatalf("proj-a #%d after ejection: %q, %v; want trunk by the fallback rule", i, got, err)
		}
	}
}

// A non-idempotent request that reached an instance (the connection was
// made, the request sent, then the connection dropped) is not retried; an
// idempotent one is, on the same lane.
func TestTransportRetriesOnlyWhenSafe(t *testing.T) {
	var dropHits atomic.Int64
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropHits.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer drop.Close()
	good, goodHits := counting(t, "good")
	svc := uniq("orders")
	reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {{Addr: addr(drop)}, {Addr: addr(good)}}})
	tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithBase(&http.Transport{DisableKeepAlives: true}))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	var postFail int
	for i := 0; i < 20; i++ {
		got, err := do(c, "POST", "http://"+svc+"/", propagation.Mark{}, strings.NewReader("x"))
		if err != nil {
			postFail++
		} else if !strings.HasPrefix(got, "good ") {
			t.Fatalf("POST: %q", got)
		}
		if got, err := do(c, "GET", "http://"+svc+"/", propagation.Mark{}, nil); err != nil || !strings.HasPrefix(got, "good ") {
			t.Fatalf("GET (idempotent) not retried on the good instance: %q, %v", got, err)
		}
	}
	// Round robin sends ~half the POSTs to the dropping instance: each of
	// those fails and is not sent again (the good one saw only its share).
	if postFail == 0 || goodHits.Load() != int64(20-postFail)+20 {
		t.Fatalf("POST failures %d, good hits %d, drop hits %d: a sent POST was retried", postFail, goodHits.Load(), dropHits.Load())
	}
}
