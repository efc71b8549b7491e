package limiter

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// CgroupCPU returns a CPU usage reader for [SystemRule.CPUUsage]: each call
// returns the fraction of the available CPU used since the previous call,
// in [0, 1]. It reads the cgroup v2 files (cpu.stat usage_usec, cpu.max
// quota) when present, else cgroup v1 (cpuacct.usage, cfs quota), else the
// machine's /proc/stat; with none readable it always returns 0 (no
// shedding by CPU).
func CgroupCPU() func() float64 {
	var mu sync.Mutex
	var lastUse, lastWall int64 = -1, 0
	cores := cpuLimit()
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		use, total, ok := readUsage()
		if !ok {
			return 0
		}
		wall := time.Now().UnixNano()
		if total > 0 { // /proc/stat: use is busy jiffies, total all jiffies
			wall, cores = total, 1
		}
		defer func() { lastUse, lastWall = use, wall }()
		if lastUse < 0 || wall <= lastWall {
			return 0
		}
		u := float64(use-lastUse) / (float64(wall-lastWall) * cores)
		return min(1, max(0, u))
	}
}

// readUsage returns CPU time used in ns (cgroups), or busy and total
// jiffies (/proc/stat, total > 0).
func readUsage() (use, total int64, ok bool) {
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.stat"); err == nil {
		for line := range bytes.Lines(b) {
			if v, found := bytes.CutPrefix(line, []byte("usage_usec ")); found {
				n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				return n * 1000, 0, err == nil
			}
		}
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/cpuacct/cpuacct.usage"); err == nil {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		return n, 0, err == nil
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, 0, false
	}
	var idle int64
	for i, x := range f[1:] {
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total, true
}

// cpuLimit returns the cores available to the cgroup: its quota, else
// runtime.NumCPU.
func cpuLimit() float64 {
	n := float64(runtime.NumCPU())
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := bytes.Fields(b)
		if len(f) == 2 && string(f[0]) != "max" {
			q, err1 := strconv.ParseFloat(string(f[0]), 64)
			p, err2 := strconv.ParseFloat(string(f[1]), 64)
			if err1 == nil && err2 == nil && p > 0 && q > 0 {
				return min(n, q/p)
			}
		}
		return n
	}
	q, err1 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
	p, err2 := os.ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
	if err1 == nil && err2 == nil {
		qf, e1 := strconv.ParseFloat(string(bytes.TrimSpace(q)), 64)
		pf, e2 := strconv.ParseFloat(string(bytes.TrimSpace(p)), 64)
		if e1 == nil && e2 == nil && qf > 0 && pf > 0 {
			return min(n, qf/pf)
		}
	}
	return n
}
