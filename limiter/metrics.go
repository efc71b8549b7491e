package limiter

import (
	"sort"
	"sync/atomic"
	"time"
)

// metricSeconds is how many one-second buckets each resource keeps.
const metricSeconds = 60

type field int

const (
	fPass field = iota
	fErr
	fLatency // sum of latencies, ns
	fBlockQPS
	fBlockConcurrency
	fBlockBreaker
	fBlockSystem
	fBlockQueue
	fDryRun // would have been blocked by a dry-run rule
	fExited // requests that exited (denominator of fLatency)
	fBlockParam
)

// blockField is the counter of each block reason.
var blockField = [...]field{ReasonQPS: fBlockQPS, ReasonConcurrency: fBlockConcurrency, ReasonBreaker: fBlockBreaker,
	ReasonSystem: fBlockSystem, ReasonQueue: fBlockQueue, ReasonParam: fBlockParam}

// classStats are the per-second counters of one resource and class.
type classStats struct {
	w        *window[field]
	inflight atomic.Int64
	fold     [maxFields]atomic.Int64
}

func (s *classStats) pass(now int64) {
	s.w.bucket(now).v[fPass].Add(1)
	s.inflight.Add(1)
}

func (s *classStats) exit(now, rt int64, failed bool) {
	b := s.w.bucket(now)
	b.v[fLatency].Add(rt)
	b.v[fExited].Add(1)
	if failed {
		b.v[fErr].Add(1)
	}
	s.inflight.Add(-1)
}

func (s *classStats) block(now int64, r Reason) {
	s.w.bucket(now).v[blockField[r]].Add(1)
}

func (s *classStats) dryRun(now int64) { s.w.bucket(now).v[fDryRun].Add(1) }

// passedThisSecond counts the requests of both classes admitted in the
// current one-second bucket.
func (r *Resource) passedThisSecond(now int64) int64 {
	var n int64
	for i := range r.stats {
		n += r.stats[i].w.bucket(now).v[fPass].Load()
	}
	return n
}

// Blocks counts refusals by reason.
type Blocks struct {
	QPS         int64 `json:"qps"`
	Concurrency int64 `json:"concurrency"`
	Breaker     int64 `json:"breaker"`
	System      int64 `json:"system"`
	Queue       int64 `json:"queue"`
	Param       int64 `json:"param"`
}

// Total is the sum over all reasons.
func (b Blocks) Total() int64 {
	return b.QPS + b.Concurrency + b.Breaker + b.System + b.Queue + b.Param
}

// Second holds one second of one resource and class.
type Second struct {
	Time    time.Time     `json:"time"` // start of the second
	Pass    int64         `json:"pass"`
	Blocked Blocks        `json:"blocked"`
	DryRun  int64         `json:"dryRun"` // would have been blocked by dry-run rules
	Error   int64         `json:"error"`
	Latency time.Duration `json:"latencyNs"` // mean latency of the requests that exited this second
	exited  int64
}

// ClassStats are the last minute of one resource for one traffic class.
type ClassStats struct {
	Class    string   `json:"class"`
	InFlight int64    `json:"inFlight"`
	Seconds  []Second `json:"seconds"` // oldest first, only seconds with data
}

// Sum adds up the seconds that started at or after since.
func (c ClassStats) Sum(since time.Time) Second {
	var s Second
	var lat time.Duration
	for _, x := range c.Seconds {
		if x.Time.Before(since) {
			continue
		}
		s.Pass += x.Pass
		s.Error += x.Error
		s.DryRun += x.DryRun
		s.Blocked.QPS += x.Blocked.QPS
		s.Blocked.Concurrency += x.Blocked.Concurrency
		s.Blocked.Breaker += x.Blocked.Breaker
		s.Blocked.System += x.Blocked.System
		s.Blocked.Queue += x.Blocked.Queue
		s.Blocked.Param += x.Blocked.Param
		lat += x.Latency * time.Duration(x.exited)
		s.exited += x.exited
	}
	if s.exited > 0 {
		s.Latency = lat / time.Duration(s.exited)
	}
	return s
}

// ResourceStats are the last minute of one resource.
type ResourceStats struct {
	Resource string       `json:"resource"`
	Classes  []ClassStats `json:"classes"` // production, loadtest
}

// Stats returns the last minute of per-second counters of r.
func (r *Resource) Stats() ResourceStats {
	now := r.l.now()
	out := ResourceStats{Resource: r.name}
	for ci := range r.stats {
		cs := &r.stats[ci]
		c := ClassStats{Class: classNames[ci+1], InFlight: cs.inflight.Load()}
		w := cs.w
		for i := range w.buckets {
			b := &w.buckets[i]
			start := b.begin()
			if start < 0 || start <= now-int64(metricSeconds)*w.width || start > now {
				continue
			}
			s := Second{
				Time:  r.l.epoch.Add(time.Duration(start)),
				Pass:  b.v[fPass].Load(),
				Error: b.v[fErr].Load(),
				Blocked: Blocks{
					QPS: b.v[fBlockQPS].Load(), Concurrency: b.v[fBlockConcurrency].Load(),
					Breaker: b.v[fBlockBreaker].Load(), System: b.v[fBlockSystem].Load(),
					Queue: b.v[fBlockQueue].Load(), Param: b.v[fBlockParam].Load(),
				},
				DryRun: b.v[fDryRun].Load(),
				exited: b.v[fExited].Load(),
			}
			if s.exited > 0 {
				s.Latency = time.Duration(b.v[fLatency].Load() / s.exited)
			}
			c.Seconds = append(c.Seconds, s)
		}
		sort.Slice(c.Seconds, func(i, j int) bool { return c.Seconds[i].Time.Before(c.Seconds[j].Time) })
		out.Classes = append(out.Classes, c)
	}
	return out
}

// Snapshot returns the stats of every resource, sorted by name.
func (l *Limiter) Snapshot() []ResourceStats {
	res := l.resourcesSorted()
	out := make([]ResourceStats, len(res))
	for i, r := range res {
		out[i] = r.Stats()
	}
	return out
}
