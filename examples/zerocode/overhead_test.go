package zerocode_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunTimeOverhead compares the run-time cost of the shop built with
// Orchestrion against the same shop wired by hand (./handwired, plain `go
// build`), and against the shop built without shadowlane at all (plain `go
// build` of ./shop) when $ZEROCODE_PLAIN_BIN names it. It is a measurement,
// not a check: it runs only with ZEROCODE_OVERHEAD=1.
//
// Each binary runs as its own process on its own stores. Rounds alternate
// the order of the binaries; in each round every binary serves the same
// mix (half production orders, half signed load-test orders, 4 at a time).
// Reported per binary: the median over rounds of requests per second and
// of the process's CPU time (user + system, from /proc) per request, which
// the other sessions' load disturbs less than wall time.
//
//	ZEROCODE_OVERHEAD=1 ZEROCODE_BIN=/tmp/shop-orch ZEROCODE_HANDWIRED_BIN=/tmp/shop-hand \
//	  ZEROCODE_PLAIN_BIN=/tmp/shop-plain GOWORK=off go test -run TestRunTimeOverhead -v .
//
// ZEROCODE_ROUNDS (default 8) and ZEROCODE_REQUESTS (per binary and round,
// default 400) size the run.
func TestRunTimeOverhead(t *testing.T) {
	if os.Getenv("ZEROCODE_OVERHEAD") == "" {
		t.Skip("a measurement: set ZEROCODE_OVERHEAD=1 (see the doc comment)")
	}
	needRedis(t)
	dir := t.TempDir()
	bins := []struct{ name, path string }{{"orchestrion", orchestrionShop(t, dir)}, {"hand-wired", handwiredShop(t, dir)}}
	if p := os.Getenv("ZEROCODE_PLAIN_BIN"); p != "" {
		bins = append(bins, struct{ name, path string }{"no shadowlane", p})
	}
	rounds, perRound := envInt("ZEROCODE_ROUNDS", 8), envInt("ZEROCODE_REQUESTS", 400)
	run := "zc-bench-" + randHex()
	tok, err := signer(t, secret).Keyring().Sign(run, "", time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	shops := make([]*shop, len(bins))
	for i, b := range bins {
		shops[i] = startShop(t, b.path, newStores(t, dir))
		drive(t, shops[i], 50, run, tok, "warm") // warm-up: connections, statement cache
	}
	rps := make([][]float64, len(bins))
	cpu := make([][]float64, len(bins))
	for r := 0; r < rounds; r++ {
		order := make([]int, len(bins))
		for i := range order {
			order[i] = (i + r) % len(bins)
		}
		for _, i := range order {
			c0 := cpuTicks(t, shops[i].pid)
			start := time.Now()
			drive(t, shops[i], perRound, run, tok, fmt.Sprintf("r%d", r))
			wall := time.Since(start)
			c1 := cpuTicks(t, shops[i].pid)
			rps[i] = append(rps[i], float64(perRound)/wall.Seconds())
			cpu[i] = append(cpu[i], float64(c1-c0)*1e6/float64(clockTicks)/float64(perRound))
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	mix := "half production, half signed load-test"
	if productionOnly {
		mix = "production only"
	}
	t.Logf("%d rounds x %d requests per binary (%s; 4 in flight); load average at the end: %s",
		rounds, perRound, mix, strings.TrimSpace(string(load)))
	base := median(cpu[1])
	for i, b := range bins {
		t.Logf("%-14s median %7.0f req/s  median CPU %6.0f µs/request (%+.1f%% vs hand-wired)  CPU per round: %v",
			b.name, median(rps[i]), median(cpu[i]), 100*(median(cpu[i])-base)/base, rounded(cpu[i]))
	}
}

// handwiredShop builds ./handwired with plain `go build` ($ZEROCODE_HANDWIRED_BIN: built already).
func handwiredShop(t *testing.T, dir string) string {
	if bin := os.Getenv("ZEROCODE_HANDWIRED_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "handwired")
	build := exec.Command("go", "build", "-o", bin, "./handwired")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./handwired: %v\n%s", err, out)
	}
	return bin
}

// drive sends n orders to s, 4 at a time, alternating production and
// signed load-test ones; every one must be answered 200.
func drive(t *testing.T, s *shop, n int, run, tok, tag string) {
	t.Helper()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/order?sku=sku-1&user=u-%s-%d", s.addr, tag, i), nil)
				if i%2 == 1 && !productionOnly {
					req.Header.Set("X-Shadowlane-Run", run)
					req.Header.Set("X-Shadowlane-Token", tok)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					if failed.Add(1) == 1 {
						body := ""
						if err == nil {
							b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
							body = string(b)
						}
						firstErr.Store(fmt.Sprint(err, " ", statusOf(resp), " ", body))
					}
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed (first: %v)\n%s", f, n, firstErr.Load(), s.logs.String())
	}
}

func statusOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return resp.Status
}

// productionOnly (ZEROCODE_PRODUCTION_ONLY=1) makes TestRunTimeOverhead
// send production orders only: the cost of shadowlane on unmarked traffic.
var productionOnly = os.Getenv("ZEROCODE_PRODUCTION_ONLY") != ""

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// Linux).
const clockTicks = 100

// cpuTicks is utime + stime of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// fields after the command (which may hold spaces) in parentheses
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}

// TestRunTimeInstructions is TestRunTimeOverhead counted in instructions
// instead of CPU time: each shop runs under valgrind's callgrind; after a
// warm-up the test zeroes the counts, sends
// ZEROCODE_REQUESTS production orders one at a time, dumps the counts, and
// does the same with as many signed load-test orders; it reports
// instructions per request of each kind. The
// count covers the whole process (handler, Go runtime, background
// goroutines), is the same whatever else the machine runs, and is what a
// shared, noisy machine can measure to a useful precision. Opt-in like
// TestRunTimeOverhead (ZEROCODE_OVERHEAD=1, valgrind on PATH), with the
// same $ZEROCODE_*BIN variables.
func TestRunTimeInstructions(t *testing.T) {
	if os.Getenv("ZEROCODE_OVERHEAD") == "" {
		t.Skip("a measurement: set ZEROCODE_OVERHEAD=1 (see TestRunTimeOverhead)")
	}
	if _, err := exec.LookPath("callgrind_control"); err != nil {
		t.Skip("valgrind is not installed")
	}
	needRedis(t)
	dir := t.TempDir()
	bins := []struct{ name, path string }{{"orchestrion", orchestrionShop(t, dir)}, {"hand-wired", handwiredShop(t, dir)}}
	if p := os.Getenv("ZEROCODE_PLAIN_BIN"); p != "" {
		bins = append(bins, struct{ name, path string }{"no shadowlane", p})
	}
	n := envInt("ZEROCODE_REQUESTS", 400)
	run := "zc-instr-" + randHex()
	tok, err := signer(t, secret).Keyring().Sign(run, "", time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{"production", "load-test"}
	per, net, idle := make([][2]float64, len(bins)), make([][2]float64, len(bins)), make([]float64, len(bins))
	for i, b := range bins {
		out := filepath.Join(dir, fmt.Sprintf("cg.%d", i))
		if d := os.Getenv("ZEROCODE_CGDIR"); d != "" { // keep the dumps for callgrind_annotate
			out = filepath.Join(d, fmt.Sprintf("cg.%d", i))
		}
		s := startShop(t, b.path, newStores(t, dir), "env", "GODEBUG=asyncpreemptoff=1",
			"valgrind", "--tool=callgrind", "--callgrind-out-file="+out)
		drive1(t, s, 40, run, tok, "warm", -1)
		// idle: what the process spends per second with no request (timers,
		// pollers, the runtime); under valgrind a request takes ~50x its
		// wall time, so this is taken off the counts below
		ctl(t, "--zero", s.pid)
		start := time.Now()
		time.Sleep(3 * time.Second)
		ctl(t, "--dump", s.pid)
		idle[i] = float64(dumpedIr(t, out+".1")) / time.Since(start).Seconds()
		for k := range kinds {
			ctl(t, "--zero", s.pid)
			start := time.Now()
			drive1(t, s, n, run, tok, "count", k)
			ctl(t, "--dump", s.pid)
			ir := float64(dumpedIr(t, fmt.Sprintf("%s.%d", out, k+2)))
			per[i][k] = ir / float64(n)
			net[i][k] = (ir - idle[i]*time.Since(start).Seconds()) / float64(n)
		}
		s.stop()
	}
	for k, kind := range kinds {
		for i, b := range bins {
			t.Logf("%-10s %-14s %9.0f instructions per request (%+.1f%% vs hand-wired); less idle work: %9.0f (%+.1f%%)",
				kind, b.name, per[i][k], 100*(per[i][k]-per[1][k])/per[1][k], net[i][k], 100*(net[i][k]-net[1][k])/net[1][k])
		}
	}
	for i, b := range bins {
		t.Logf("idle work of %-14s %9.0f instructions per second", b.name, idle[i])
	}
	t.Logf("%d requests of each kind one at a time per binary, whole process (handler, runtime, background work)", n)
}

// drive1 is drive with one request in flight, so that the counts do not
// depend on how requests interleave: production orders (kind 0), signed
// load-test orders (kind 1) or both alternating (kind -1).
func drive1(t *testing.T, s *shop, n int, run, tok, tag string, kind int) {
	t.Helper()
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/order?sku=sku-1&user=u-%s-%d-%d", s.addr, tag, kind, i), nil)
		if kind == 1 || kind == -1 && i%2 == 1 {
			req.Header.Set("X-Shadowlane-Run", run)
			req.Header.Set("X-Shadowlane-Token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, s.logs.String())
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s %s\n%s", i, resp.Status, b, s.logs.String())
		}
	}
}

func ctl(t *testing.T, arg string, pid int) {
	t.Helper()
	if out, err := exec.Command("callgrind_control", arg, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("callgrind_control %s: %v\n%s", arg, err, out)
	}
}

// dumpedIr reads the "summary:" line of the dump callgrind wrote on
// request to out.
func dumpedIr(t *testing.T, out string) int64 {
	t.Helper()
	files := []string{out}
	var total int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "summary: "); ok {
				n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				total += n
			}
		}
	}
	if total == 0 {
		t.Fatalf("no instruction counts in %v", files)
	}
	return total
}
