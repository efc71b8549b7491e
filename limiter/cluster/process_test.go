package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/internal/testenv"
	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/cluster"
)

// worker env: when set, the test binary acts as one process of the fleet.
const (
	envWorkerKey   = "SHADOWLANE_CLUSTER_WORKER_KEY"
	envWorkerUntil = "SHADOWLANE_CLUSTER_WORKER_UNTIL"
)

// TestMain lets the test binary re-execute itself as a fleet member.
func TestMain(m *testing.M) {
	if key := os.Getenv(envWorkerKey); key != "" {
		os.Exit(worker(key))
	}
	os.Exit(m.Run())
}

// worker hammers the shared limit until the deadline and prints
// "passed <n> first <unixnano>".
func worker(key string) int {
	until, err := strconv.ParseInt(os.Getenv(envWorkerUntil), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad deadline:", err)
		return 2
	}
	var rt roundTrips
	rdb := client(nil, addr)
	rdb.AddHook(&rt)
	l, err := cluster.New(rdb, key, processQPS, cluster.WithBurst(processBurst), cluster.WithBatch(10),
		cluster.WithTimeout(500*time.Millisecond), cluster.WithFallbackQPS(processFallbackQPS))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var (
		mu            sync.Mutex
		passed, first int64
		decisions     int64
		wg            sync.WaitGroup
		failed        error
	)
	for range 2 {
		wg.Go(func() {
			for time.Now().UnixNano() < until {
				err := l.Allow(context.Background())
				mu.Lock()
				decisions++
				mu.Unlock()
				if err == nil {
					mu.Lock()
					passed++
					if first == 0 {
						first = time.Now().UnixNano()
					}
					mu.Unlock()
					continue
				}
				var be *limiter.BlockError
				if !errors.As(err, &be) {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
				time.Sleep(min(be.RetryAfter, 5*time.Millisecond))
			}
		})
	}
	wg.Wait()
	if failed != nil {
		fmt.Fprintln(os.Stderr, failed)
		return 1
	}
	fmt.Printf("passed %d first %d fallbacks %d decisions %d trips %d\n", passed, first, l.Fallbacks(), decisions, rt.n.Load())
	return 0
}

const processQPS, processBurst, processFallbackQPS = 600, 30, 1

// TestSharedLimitAcrossProcesses: three OS processes share one cluster limit
// on the real Redis; together they never pass more than it allows, and
// not much less (see checkShared), however loaded the machine is.
func TestSharedLimitAcrossProcesses(t *testing.T) {
	testenv.Need(t, "Redis", addr)
	key := fmt.Sprintf("test-procs-%d", rand.Int64())
	t.Cleanup(func() {
		if l, err := cluster.New(client(t, addr), key, processQPS); err == nil {
			l.Reset(context.Background())
		}
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	until := start.Add(3 * time.Second).UnixNano()
	const procs = 3
	outs := make([]string, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(self, "-test.run", "^$")
			cmd.Env = append(os.Environ(), envWorkerKey+"="+key, envWorkerUntil+"="+strconv.FormatInt(until, 10))
			out, err := cmd.Output()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	window := time.Since(start).Seconds()
	var passed, first, fallbacks, decisions, trips int64
	for i := range procs {
		if errs[i] != nil {
			var ee *exec.ExitError
			if errors.As(errs[i], &ee) {
				t.Fatalf("process %d: %v: %s", i, errs[i], ee.Stderr)
			}
			t.Fatalf("process %d: %v", i, errs[i])
		}
		var n, f, fb, d, rt int64
		if _, err := fmt.Sscanf(strings.TrimSpace(outs[i]), "passed %d first %d fallbacks %d decisions %d trips %d", &n, &f, &fb, &d, &rt); err != nil {
			t.Fatalf("process %d printed %q: %v", i, outs[i], err)
		}
		passed += n
		fallbacks += fb
		decisions += d
		trips += rt
		if f != 0 && (first == 0 || f < first) {
			first = f
		}
	}
	if first == 0 {
		t.Fatal("no process passed a single request")
	}
	// Above the limit every refused decision may cost a round trip; never more.
	t.Logf("%d processes: %d decisions, %d round trips (%.3f per decision)", procs, decisions, trips, float64(trips)/float64(decisions))
	if trips > decisions+procs*4 { // +connection set-up and a NOSCRIPT per process
		t.Fatalf("%d round trips for %d decisions", trips, decisions)
	}
	checkShared(t, passed, processQPS, processBurst, window, float64(until-first)/1e9, procs, processFallbackQPS, fallbacks)
}
