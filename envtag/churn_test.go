package envtag_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
)

// churnInstance is a real HTTP server on loopback with a fixed
// environment; it answers with it.
type churnInstance struct {
	env  string
	addr string
	srv  *httptest.Server
	dead atomic.Bool
}

func startChurnInstance(t *testing.T, env string) *churnInstance {
	in := &churnInstance{env: env}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "env="+env)
	}))
	in.addr = addr(in.srv)
	t.Cleanup(in.srv.Close)
	return in
}

// TestTransportChurn sends tagged and untagged requests from many
// goroutines through the HTTP transport while the registry churns:
// instances added and removed, killed while still listed (connection
// refused until ejected), and updates that list a project instance under
// trunk as well (refused). Every answer is checked against the instance's
// real environment: 0 untagged requests on a project instance, 0 tagged
// requests on another project's instance.
func TestTransportChurn(t *testing.T) {
	d := 8 * time.Second
	if raceEnabled || testing.Short() {
		d = 4 * time.Second
	}
	svc := uniq("orders")
	envs := []string{"", "", "", "proj-a", "proj-a", "proj-b", "proj-b"}
	var mu sync.Mutex
	var all []*churnInstance
	for _, e := range envs {
		all = append(all, startChurnInstance(t, e))
	}
	reg, _ := envtag.NewStaticRegistry(nil)
	tr := envtag.NewTransport(reg, envtag.WithServices(svc), envtag.WithPolicy(&envtag.Policy{}),
		envtag.WithHealth(envtag.HealthConfig{Ejection: 50 * time.Millisecond, MaxEjection: 200 * time.Millisecond}))
	defer tr.Close()
	c := &http.Client{Transport: tr}
	hBefore := envtag.Health(svc)

	var refused, accepted, killed int
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			var set []envtag.Endpoint
			for _, in := range all {
				if rand.IntN(10) < 7 {
					set = append(set, envtag.Endpoint{Addr: in.addr, Env: in.env})
				}
			}
			switch op := rand.IntN(10); {
			case op < 3 && len(set) > 0: // typo: a listed instance also under another label
				var projects []*churnInstance
				for _, in := range all {
					if in.env != "" {
						projects = append(projects, in)
					}
				}
				in := projects[rand.IntN(len(projects))]
				wrong := ""
				if rand.IntN(2) == 0 {
					wrong = map[string]string{"proj-a": "proj-b", "proj-b": "proj-a"}[in.env]
				}
				set = append(set, envtag.Endpoint{Addr: in.addr, Env: in.env}, envtag.Endpoint{Addr: in.addr, Env: wrong})
				rand.Shuffle(len(set), func(i, j int) { set[i], set[j] = set[j], set[i] })
				if err := reg.Set(svc, set); err == nil {
					t.Errorf("conflicting set accepted: %v", set)
				} else {
					refused++
				}
			case op < 4: // kill an instance (still listed), start a replacement
				i := rand.IntN(len(all))
				all[i].srv.Close()
				all[i].dead.Store(true)
				killed++
				all = append(all, startChurnInstance(t, all[i].env))
				fallthrough
			default:
				if err := reg.Set(svc, set); err != nil {
					t.Errorf("consistent set refused: %v", err)
				}
				accepted++
			}
			mu.Unlock()
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		}
	}()

	var ok, failed, noLane, untaggedOnProject, crossProject atomic.Int64
	var examples sync.Map
	tags := []string{"", "proj-a", "proj-b", "proj-c"}
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				tag := tags[i%len(tags)]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				req, _ := http.NewRequestWithContext(propagation.With(ctx, propagation.Mark{Env: tag}), "GET", "http://"+svc+"/", nil)
				resp, err := c.Do(req)
				if err != nil {
					cancel()
					failed.Add(1)
					if errors.Is(err, envtag.ErrNoLane) {
						noLane.Add(1)
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				cancel()
				got := strings.TrimPrefix(string(b), "env=")
				switch {
				case tag == "" && got != "":
					untaggedOnProject.Add(1)
					examples.Store(fmt.Sprintf("untagged on %q", got), true)
				case tag != "" && got != "" && got != tag:
					crossProject.Add(1)
					examples.Store(fmt.Sprintf("%s on %q", tag, got), true)
				default:
					ok.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	h := envtag.Health(svc)
	t.Logf("%v churn: %d registry updates accepted, %d conflicting refused, %d instances killed; requests: %d served correctly, %d failed (%d of them ErrNoLane: no live instance allowed at that moment, the others connection errors on every instance of the lane tried), %d untagged on a project instance, %d cross-project; health: %d connection failures, %d ejections, %d readmissions, %d retries",
		d, accepted, refused, killed, ok.Load(), failed.Load(), noLane.Load(), untaggedOnProject.Load(), crossProject.Load(),
		h.ConnFailures-hBefore.ConnFailures, h.Ejections-hBefore.Ejections, h.Readmissions-hBefore.Readmissions, h.Retries-hBefore.Retries)
	if untaggedOnProject.Load() != 0 || crossProject.Load() != 0 {
		var ex []string
		examples.Range(func(k, _ any) bool { ex = append(ex, k.(string)); return len(ex) < 5 })
		t.Errorf("isolation violated: %d untagged on a project instance, %d cross-project (%v)", untaggedOnProject.Load(), crossProject.Load(), ex)
	}
	if ok.Load() == 0 || refused == 0 || killed == 0 {
		t.Errorf("the churn did not exercise the transport: %d ok, %d refused, %d killed", ok.Load(), refused, killed)
	}
}
