package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	l, err := cluster.New(client(nil, addr), key, processQPS, cluster.WithBurst(processBurst), cluster.WithBatch(10), cluster.WithTimeout(500*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var (
		mu            sync.Mutex
		passed, first int64
		wg            sync.WaitGroup
		failed        error
	)
	for range 2 {
		wg.Go(func() {
			for time.Now().UnixNano() < until {
				err := l.Allow(context.Background())
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
	if fb := l.Fallbacks(); fb != 0 {
		fmt.Fprintf(os.Stderr, "fell back %d times with Redis up\n", fb)
		return 1
	}
	fmt.Printf("passed %d first %d\n", passed, first)
	return 0
}

const processQPS, processBurst = 600, 30

// TestSharedLimitAcrossProcesses: three OS processes share one cluster limit
// on the real Redis; together they stay within 2% of it.
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
	until := time.Now().Add(3 * time.Second).UnixNano()
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
	var passed, first int64
	for i := range procs {
		if errs[i] != nil {
			var ee *exec.ExitError
			if errors.As(errs[i], &ee) {
				t.Fatalf("process %d: %v: %s", i, errs[i], ee.Stderr)
			}
			t.Fatalf("process %d: %v", i, errs[i])
		}
		var n, f int64
		if _, err := fmt.Sscanf(strings.TrimSpace(outs[i]), "passed %d first %d", &n, &f); err != nil {
			t.Fatalf("process %d printed %q: %v", i, outs[i], err)
		}
		passed += n
		if f != 0 && (first == 0 || f < first) {
			first = f
		}
	}
	elapsed := float64(until-first) / 1e9
	got := float64(passed-processBurst) / elapsed
	dev := math.Abs(got-processQPS) / processQPS
	t.Logf("observed %.1f QPS across %d processes (%.2f%% off), %d passed in %.2fs", got, procs, dev*100, passed, elapsed)
	if dev > 0.02 {
		t.Fatalf("observed %.1f QPS, limit %d: %.2f%% off", got, processQPS, dev*100)
	}
}
