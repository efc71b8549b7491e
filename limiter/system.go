package limiter

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// SystemRule configures adaptive system protection, which applies to every
// resource of a limiter (see [WithSystem]).
//
// It sheds load-test traffic first: while CPU usage is at or above
// LoadTestCPU, every load-test request is refused. Production traffic is
// refused only while CPU usage is at or above CPU (or within CoolOff of the
// last such refusal) and the requests in flight exceed what the limiter
// measured the process can complete — the largest number of requests
// completed per second times the smallest mean latency over Window, as in
// the BBR congestion-control idea (and go-kratos/aegis's limiter).
// Refusals wrap [ErrOverloaded].
type SystemRule struct {
	CPU         float64       // production threshold, (0, 1]; default 0.8
	LoadTestCPU float64       // load-test threshold, (0, CPU]; default CPU - 0.2, at least 0.05
	Window      time.Duration // statistics window, default 5s (50 buckets)
	CoolOff     time.Duration // default 1s
	SampleEvery time.Duration // how often CPU usage is read; default 500ms
	// CPUUsage returns the CPU usage in [0, 1] of the process's cgroup (or
	// the machine) since its previous call. Nil uses [CgroupCPU]. Tests
	// inject a reading here to simulate pressure. It is not encoded (a
	// func has no JSON form).
	CPUUsage func() float64 `json:"-"`
}

// WithSystem enables adaptive system protection.
func WithSystem(r SystemRule) Option {
	return func(l *Limiter) { l.sysCfg = &r }
}

func (r *SystemRule) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &RuleError{Rule: "system", Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if r.CPU < 0 || r.CPU > 1 || math.IsNaN(r.CPU) {
		bad("cpu", "%v out of range (0, 1]", r.CPU)
	}
	if r.LoadTestCPU < 0 || r.LoadTestCPU > 1 || math.IsNaN(r.LoadTestCPU) {
		bad("loadTestCpu", "%v out of range (0, 1]", r.LoadTestCPU)
	}
	if r.CPU > 0 && r.LoadTestCPU > r.CPU {
		bad("loadTestCpu", "%v above the production threshold %v: load-test traffic must be shed first", r.LoadTestCPU, r.CPU)
	}
	nonNegative(bad, "window", r.Window)
	nonNegative(bad, "coolOff", r.CoolOff)
	nonNegative(bad, "sampleEvery", r.SampleEvery)
	return errors.Join(errs...)
}

// ValidateSystem reports everything wrong with r, each problem a
// *[RuleError] (Rule "system") naming the field.
func ValidateSystem(r *SystemRule) error { return r.validate() }

// SetSystem replaces the adaptive system protection rule (nil turns it
// off). An invalid rule is refused with every problem (each a *RuleError)
// and the old one stays. Requests in flight finish under the rule that
// admitted them.
func (l *Limiter) SetSystem(r *SystemRule) error {
	if r == nil {
		l.sys.Store(nil)
		return nil
	}
	if err := r.validate(); err != nil {
		return err
	}
	s := &system{cfg: *r}
	s.init(l)
	l.sys.Store(s)
	return nil
}

// System returns the system protection rule in force, or nil.
func (l *Limiter) System() *SystemRule {
	if s := l.sys.Load(); s != nil {
		r := s.cfg
		return &r
	}
	return nil
}

type sfield int

const (
	sPass sfield = iota // completed requests
	sRT                 // sum of their latencies, ns
)

type system struct {
	cfg           SystemRule
	cpu, ltCPU    float64
	coolOff       int64
	every         int64
	read          func() float64
	l             *Limiter
	usage         atomic.Uint64 // math.Float64bits of the last reading
	nextSample    atomic.Int64
	lastDrop      atomic.Int64
	inflight      atomic.Int64
	w             *window[sfield]
	bucketsPerSec float64
}

func (s *system) init(l *Limiter) {
	s.l = l
	c := s.cfg
	s.cpu = c.CPU
	if s.cpu == 0 {
		s.cpu = 0.8
	}
	s.ltCPU = c.LoadTestCPU
	if s.ltCPU == 0 {
		s.ltCPU = max(0.05, s.cpu-0.2)
	}
	s.coolOff = int64(c.CoolOff)
	if s.coolOff == 0 {
		s.coolOff = int64(time.Second)
	}
	s.every = int64(c.SampleEvery)
	if s.every == 0 {
		s.every = int64(500 * time.Millisecond)
	}
	win := c.Window
	if win == 0 {
		win = 5 * time.Second
	}
	width := int64(win) / 50
	s.w = newWindow[sfield](50, width)
	s.bucketsPerSec = float64(time.Second) / float64(width)
	s.read = c.CPUUsage
	if s.read == nil {
		s.read = CgroupCPU()
	}
	s.lastDrop.Store(math.MinInt64 / 2)
	s.nextSample.Store(math.MinInt64)
}

// SystemErr returns the validation error of the [SystemRule] given to
// [WithSystem], or nil. An invalid system rule is not enforced.
func (l *Limiter) SystemErr() error { return l.sysErr }

// CPU returns the last CPU reading of system protection (0 when disabled).
func (l *Limiter) CPU() float64 {
	s := l.sys.Load()
	if s == nil {
		return 0
	}
	return math.Float64frombits(s.usage.Load())
}

func (s *system) sample(now int64) float64 {
	if next := s.nextSample.Load(); now >= next && s.nextSample.CompareAndSwap(next, now+s.every) {
		s.usage.Store(math.Float64bits(s.read()))
	}
	return math.Float64frombits(s.usage.Load())
}

func (s *system) admit(r *Resource, cls uint8, now int64) *BlockError {
	cpu := s.sample(now)
	if cls == clsLoadTest && cpu >= s.ltCPU {
		return &BlockError{Resource: r.name, Rule: "system", Reason: ReasonSystem, Class: classNames[cls], Limit: s.ltCPU, Value: cpu, RetryAfter: time.Duration(s.every)}
	}
	if cpu >= s.cpu || now-s.lastDrop.Load() < s.coolOff {
		if in, max := s.inflight.Load(), s.maxInFlight(now); in > max {
			if cpu >= s.cpu {
				s.lastDrop.Store(now)
			}
			return &BlockError{Resource: r.name, Rule: "system", Reason: ReasonSystem, Class: classNames[cls], Limit: float64(max), Value: float64(in), RetryAfter: time.Duration(s.every)}
		}
	}
	s.inflight.Add(1)
	return nil
}

// maxInFlight estimates the requests the process can hold in flight:
// max completions per bucket × buckets per second × min mean latency.
func (s *system) maxInFlight(now int64) int64 {
	span := s.w.width * int64(len(s.w.buckets))
	var maxPass int64
	minRT := math.Inf(1)
	for i := range s.w.buckets {
		b := &s.w.buckets[i]
		st := b.begin()
		if st < 0 || st <= now-span || st > now || st+s.w.width > now {
			continue // unused, too old, or the bucket still filling
		}
		p := b.v[sPass].Load()
		maxPass = max(maxPass, p)
		if p > 0 {
			minRT = math.Min(minRT, float64(b.v[sRT].Load())/float64(p))
		}
	}
	if maxPass == 0 || math.IsInf(minRT, 1) {
		return 1
	}
	return max(1, int64(math.Ceil(float64(maxPass)*s.bucketsPerSec*minRT/float64(time.Second))))
}

func (s *system) exit(now, rt int64) {
	b := s.w.bucket(now)
	b.v[sPass].Add(1)
	b.v[sRT].Add(rt)
	s.inflight.Add(-1)
}
