package envtag_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
)

// fakeStalls is a StallClock whose readings the test scripts: each reading
// adds step to the total (a process stalled without end when step is
// large, a healthy one when it is 0). The n-th reading is announced on
// asked.
type fakeStalls struct {
	step  time.Duration
	mu    sync.Mutex
	total time.Duration
	n     int
	asked chan int
}

func newFakeStalls(step time.Duration) *fakeStalls {
	return &fakeStalls{step: step, asked: make(chan int, 100)}
}

func (f *fakeStalls) Stalled() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		f.total += f.step
	}
	f.n++
	f.asked <- f.n
	return f.total
}

// slowConnect is a base RoundTripper whose connect ends only after the
// connect guard looked at the stall clock a second time (that is, after
// the grace was up), unless the attempt is abandoned first.
type slowConnect struct{ stalls *fakeStalls }

func (s slowConnect) RoundTrip(req *http.Request) (*http.Response, error) {
	tr := httptrace.ContextClientTrace(req.Context())
	tr.ConnectStart("tcp", req.URL.Host)
	for n := 0; n < 2; {
		select {
		case n = <-s.stalls.asked:
		case <-req.Context().Done():
			n = 2
		}
	}
	tr.ConnectDone("tcp", req.URL.Host, nil)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
}

// A connect that outlasts the grace only because the process was stalled
// is not abandoned: the grace stretches by the stall, the request is
// served and the instance is not counted as failing. The same connect in a
// process that ran freely is abandoned after the grace (a connection
// failure, ErrNoLane). The stall is simulated: a fake StallClock and a
// base transport that reports the connect done once the grace was up.
func TestConnectGraceStretchesByStall(t *testing.T) {
	pol, err := envtag.NewPolicy(envtag.Config{Strict: true, ConnectGrace: envtag.Duration(20 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		step  time.Duration
		stall bool
	}{{"stalled", time.Hour, true}, {"running", 0, false}} {
		svc := uniq("stall")
		reg, _ := envtag.NewStaticRegistry(map[string][]envtag.Endpoint{svc: {{Addr: "192.0.2.1:80"}}})
		stalls := newFakeStalls(tc.step)
		tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(pol),
			envtag.WithBase(slowConnect{stalls}), envtag.WithStallClock(stalls), envtag.WithHealth(envtag.HealthConfig{Retries: -1}))
		req, _ := http.NewRequest("GET", "http://"+svc+"/", nil)
		resp, err := tr.RoundTrip(req)
		h := envtag.Health(svc)
		if tc.stall {
			if err != nil {
				t.Fatalf("%s: %v; want the connect to get the stretched grace", tc.name, err)
			}
			resp.Body.Close()
			if h.ConnFailures != 0 || h.Ejections != 0 {
				t.Fatalf("%s: a stalled process counted its own slowness against the instance: %+v", tc.name, h)
			}
		} else {
			if !errors.Is(err, envtag.ErrNoLane) {
				t.Fatalf("%s: %v, want the connect abandoned after the grace (ErrNoLane)", tc.name, err)
			}
			if h.ConnFailures != 1 {
				t.Fatalf("%s: health %+v, want one connection failure", tc.name, h)
			}
		}
		tr.Close()
	}
}
