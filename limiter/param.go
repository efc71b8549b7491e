package limiter

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ParamRule makes a rule a hot-parameter limit: its QPS and Burst apply
// to each value of one request parameter separately (each customer id,
// each API key, each caller) instead of to the resource as a whole.
//
// Per-caller limits are hot-parameter limits on the caller's identity, e.g.
// Key "header:X-Caller" at an HTTP entry or "metadata:x-caller" at a gRPC
// one, or any key the application supplies with [Resource.EntryParams].
//
// Memory is bounded: the rule tracks the MaxValues most recently seen
// values per resource (least recently used values are forgotten, and come
// back with a full burst). Requests without the parameter are not limited
// by the rule; a request that a later param rule refuses still spends its
// token of this one. A param rule sets only QPS, Burst and the class, env and
// dry-run scope; put concurrency, queueing, warm-up and breakers in rules
// of their own.
type ParamRule struct {
	// Key names the parameter. Entries resolve it through the [Params]
	// they are given: the HTTP adapters understand "header:<Name>" and
	// "query:<name>", the gRPC ones "metadata:<key>"; application code
	// passes its own keys ("arg:sku") with [Resource.EntryParams].
	Key string
	// MaxValues bounds the values tracked per resource (default 1000).
	MaxValues int
	// Overrides gives some values a QPS of their own (their burst scales
	// with it), e.g. a bigger budget for one tenant.
	Overrides map[string]float64
}

func (p *ParamRule) validate(r *Rule) []fieldProblem {
	var errs []fieldProblem
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldProblem{field, fmt.Sprintf(format, args...)})
	}
	if p.Key == "" {
		bad("key", "empty")
	}
	if p.MaxValues < 0 || p.MaxValues > 1<<20 {
		bad("maxValues", "%d out of range [0, %d]", p.MaxValues, 1<<20)
	}
	for v, q := range p.Overrides {
		if !(q > 0 && q <= 1e9) {
			bad("overrides", "%q: qps %v out of range (0, 1e9]", v, q)
		}
	}
	if r.QPS == 0 {
		bad("key", "a param rule needs a qps limit")
	}
	if r.Concurrency > 0 || r.MaxWait > 0 || r.WarmUp > 0 || r.Breaker != nil {
		bad("key", "a param rule sets only qps and burst: put concurrency, maxWait, warmUp and breaker in another rule")
	}
	return errs
}

// Params supplies a request's parameter values to hot-parameter rules
// ([ParamRule]); an unknown key gives "".
type Params interface {
	Param(key string) string
}

// ParamFunc adapts a function to [Params].
type ParamFunc func(key string) string

// Param calls f.
func (f ParamFunc) Param(key string) string { return f(key) }

// EntryParams is [Resource.Entry] for resources with hot-parameter rules:
// p resolves the rules' parameter keys. With p nil, param rules do not
// apply. Resolving is done only for resources that have param rules.
func (r *Resource) EntryParams(ctx context.Context, p Params) (Token, error) {
	return r.entry(ctx, p)
}

// HasParamRules reports whether any rule in force on r is a param rule,
// so adapters can skip building [Params].
func (r *Resource) HasParamRules() bool { return r.set.Load().params }

const paramShards = 16

// paramState is the bounded set of per-value rate states of one param
// rule on one resource.
type paramState struct {
	cfg    ParamRule
	seed   maphash.Seed
	qps    float64
	burst  int
	shards [paramShards]pshard
}

type pshard struct {
	mu         sync.Mutex
	m          map[string]*pentry
	head, tail *pentry // most / least recently used
	max        int
}

type pentry struct {
	key        string
	tat        atomic.Int64
	interval   int64
	tau        int64
	limit      float64
	prev, next *pentry
}

func newParamState(cfg ParamRule, qps float64, burst int) *paramState {
	p := &paramState{cfg: cfg, seed: maphash.MakeSeed(), qps: qps, burst: burst}
	n := cfg.MaxValues
	if n == 0 {
		n = 1000
	}
	per := max(1, (n+paramShards-1)/paramShards)
	for i := range p.shards {
		p.shards[i].m = map[string]*pentry{}
		p.shards[i].max = per
	}
	return p
}

// sameConfig reports whether p can be kept for a rule with cfg, qps and burst.
func (p *paramState) sameConfig(cfg ParamRule, qps float64, burst int) bool {
	if p.cfg.Key != cfg.Key || p.cfg.MaxValues != cfg.MaxValues || p.qps != qps || p.burst != burst || len(p.cfg.Overrides) != len(cfg.Overrides) {
		return false
	}
	for k, v := range cfg.Overrides {
		if p.cfg.Overrides[k] != v {
			return false
		}
	}
	return true
}

// get returns the entry of value v, making it (and forgetting the least
// recently used value of its shard) when new.
func (p *paramState) get(v string) *pentry {
	s := &p.shards[maphash.String(p.seed, v)%paramShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[v]; ok {
		if s.head != e { // move to front
			e.prev.next = e.next
			if e.next != nil {
				e.next.prev = e.prev
			} else {
				s.tail = e.prev
			}
			e.prev, e.next = nil, s.head
			s.head.prev = e
			s.head = e
		}
		return e
	}
	if len(s.m) >= s.max && s.tail != nil {
		old := s.tail
		delete(s.m, old.key)
		s.tail = old.prev
		if s.tail != nil {
			s.tail.next = nil
		} else {
			s.head = nil
		}
	}
	qps := p.qps
	if o, ok := p.cfg.Overrides[v]; ok {
		qps = o
	}
	burst := p.burst
	if burst == 0 {
		burst = max(1, int(qps/10))
	} else if qps != p.qps {
		burst = max(1, int(math.Round(float64(burst)*qps/p.qps)))
	}
	e := &pentry{key: v, limit: qps}
	e.interval = int64(math.Max(1, float64(time.Second)/qps))
	e.tau = e.interval * int64(burst)
	e.tat.Store(math.MinInt64 / 2)
	e.next = s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
	s.m[v] = e
	return e
}

// take is the GCRA check of one value (no queueing, no warm-up).
func (e *pentry) take(now int64) (int64, bool) {
	for {
		tat := e.tat.Load()
		newTat := max(tat, now) + e.interval
		if wait := newTat - e.tau - now; wait > 0 {
			return wait, false
		}
		if e.tat.CompareAndSwap(tat, newTat) {
			return 0, true
		}
	}
}

// size counts the values tracked (tests).
func (p *paramState) size() int {
	n := 0
	for i := range p.shards {
		p.shards[i].mu.Lock()
		n += len(p.shards[i].m)
		p.shards[i].mu.Unlock()
	}
	return n
}
