package limiter_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
)

// scaleRules returns n rules of the shapes a large config has: exact
// routes, route templates, glob exits and gRPC service tails.
func scaleRules(n int) []limiter.Rule {
	rules := make([]limiter.Rule, 0, n)
	for i := range n {
		var r limiter.Rule
		switch i % 10 {
		case 0, 1, 2, 3:
			r = limiter.Rule{Resource: fmt.Sprintf("GET /api/v1/r%d", i), QPS: 100}
		case 4, 5, 6:
			r = limiter.Rule{Resource: fmt.Sprintf("GET /svc%d/:id", i), QPS: 100, Concurrency: 10}
		case 7, 8:
			r = limiter.Rule{Resource: fmt.Sprintf("redis:k%d*", i), QPS: 100}
		default:
			r = limiter.Rule{Resource: fmt.Sprintf("/pkg.S%d/*", i), Concurrency: 10}
		}
		rules = append(rules, r)
	}
	return rules
}

// scaleNames returns n resource names, most matched by one rule of
// scaleRules(n).
func scaleNames(n int, salt string) []string {
	names := make([]string, n)
	for i := range n {
		switch i % 10 {
		case 0, 1, 2, 3:
			names[i] = fmt.Sprintf("GET /api/v1/r%d%s", i, salt)
		case 4, 5, 6:
			names[i] = fmt.Sprintf("GET /svc%d/%s", i, salt)
		case 7, 8:
			names[i] = fmt.Sprintf("redis:k%d%s", i, salt)
		default:
			names[i] = fmt.Sprintf("/pkg.S%d/M%s", i, salt)
		}
	}
	return names
}

// BenchmarkReload10kRules: SetRules with 10,000 rules on a limiter with
// 10,000 resources in use (each recompiled). Goal (issue 13): ≤ 50 ms.
func BenchmarkReload10kRules(b *testing.B) {
	rules := scaleRules(10000)
	l := limiter.New(limiter.WithMaxResources(1 << 20))
	if err := l.SetRules(rules); err != nil {
		b.Fatal(err)
	}
	for _, n := range scaleNames(10000, "x") {
		l.Resource(n)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if err := l.SetRules(rules); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine it measures the work done better than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFirstUse10kRules: the first Resource call for a new name with
// 10,000 rules in force. Goal (issue 13): ≤ 10 µs.
func BenchmarkFirstUse10kRules(b *testing.B) {
	l := limiter.New(limiter.WithMaxResources(1 << 30))
	if err := l.SetRules(scaleRules(10000)); err != nil {
		b.Fatal(err)
	}
	names := scaleNames(10000, "")
	salts := make([]string, 0, 1024)
	i := 0
	var setup time.Duration
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		if i%len(names) == 0 {
			b.StopTimer()
			c := cpuTime()
			salts = append(salts, fmt.Sprint(len(salts)))
			names = scaleNames(10000, salts[len(salts)-1])
			setup += cpuTime() - c
			b.StartTimer()
		}
		l.Resource(names[i%len(names)])
		i++
	}
	b.ReportMetric(float64(cpuTime()-cpu-setup)/float64(b.N), "cpu-ns/op")
}
