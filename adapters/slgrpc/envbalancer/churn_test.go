package envbalancer_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/adapters/slgrpc/envbalancer"
	"github.com/shadowlane/shadowlane/envtag"
)

// TestBalancerChurn sends tagged and untagged calls from many goroutines
// while the resolver churns: endpoints added and removed, servers stopped
// while still listed, and updates listing a project instance under a
// second label (refused). Each answer names the server, whose environment
// is fixed: 0 untagged calls on a project instance, 0 tagged calls on
// another project's instance.
func TestBalancerChurn(t *testing.T) {
	d := 8 * time.Second
	if raceEnabled || testing.Short() {
		d = 4 * time.Second
	}
	type inst struct {
		env string
		s   *server
	}
	var all []inst
	n := 0
	add := func(env string) {
		n++
		name := "trunk"
		if env != "" {
			name = env
		}
		all = append(all, inst{env, startServer(t, fmt.Sprintf("%s#%d", name, n))})
	}
	for _, e := range []string{"", "", "", "proj-a", "proj-a", "proj-b", "proj-b"} {
		add(e)
	}
	eps := func() []envtag.Endpoint {
		var out []envtag.Endpoint
		for _, in := range all {
			out = append(out, in.s.ep(in.env))
		}
		return out
	}
	r := envbalancer.ManualResolver("test", eps()...)
	c := dial(t, r, "test:///"+uniq("orders"), "")
	until(t, c, "", "trunk#1", nil)

	var updates, refusedTypos, stopped int
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
			var set []envtag.Endpoint
			for _, in := range all {
				if rand.IntN(10) < 7 {
					set = append(set, in.s.ep(in.env))
				}
			}
			switch op := rand.IntN(10); {
			case op < 3: // typo: a project instance also under trunk or another project
				var projects []inst
				for _, in := range all {
					if in.env != "" {
						projects = append(projects, in)
					}
				}
				p := projects[rand.IntN(len(projects))]
				wrong := ""
				if rand.IntN(2) == 0 {
					wrong = map[string]string{"proj-a": "proj-b", "proj-b": "proj-a"}[p.env]
				}
				// Both copies at random places (which one grpc keeps
				// depends on the order).
				for _, e := range []envtag.Endpoint{p.s.ep(wrong), p.s.ep(p.env)} {
					at := rand.IntN(len(set) + 1)
					set = append(set[:at:at], append([]envtag.Endpoint{e}, set[at:]...)...)
				}
				refusedTypos++
			case op < 4: // stop a server (it stays listed), start a replacement
				i := rand.IntN(len(all))
				all[i].s.srv.Stop()
				stopped++
				add(all[i].env)
			}
			envbalancer.Update(r, set...)
			updates++
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		}
	}()

	var ok, failed, untaggedOnProject, crossProject atomic.Int64
	var ex sync.Map
	tags := []string{"", "proj-a", "proj-b", "proj-c"}
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				tag := tags[i%len(tags)]
				got, err := call(c, "", tag, 2*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				env, _, _ := strings.Cut(got, "#")
				if env == "trunk" {
					env = ""
				}
				switch {
				case tag == "" && env != "":
					untaggedOnProject.Add(1)
					ex.Store("untagged on "+got, true)
				case tag != "" && env != "" && env != tag:
					crossProject.Add(1)
					ex.Store(tag+" on "+got, true)
				default:
					ok.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	t.Logf("%v churn: %d resolver updates (%d with a conflicting address, refused), %d servers stopped; calls: %d served correctly, %d failed, %d untagged on a project instance, %d cross-project",
		d, updates, refusedTypos, stopped, ok.Load(), failed.Load(), untaggedOnProject.Load(), crossProject.Load())
	if untaggedOnProject.Load() != 0 || crossProject.Load() != 0 {
		var s []string
		ex.Range(func(k, _ any) bool { s = append(s, k.(string)); return len(s) < 5 })
		t.Errorf("isolation violated: %d untagged on a project instance, %d cross-project (%v)", untaggedOnProject.Load(), crossProject.Load(), s)
	}
	if ok.Load() == 0 || refusedTypos == 0 || stopped == 0 {
		t.Errorf("the churn did not exercise the balancer: %d ok, %d typos, %d stopped", ok.Load(), refusedTypos, stopped)
	}
}
