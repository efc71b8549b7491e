package shadowlane

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shadowlane/shadowlane/limiter"
	"github.com/shadowlane/shadowlane/limiter/dashboard"
)

// LimitsConfig configures flow control (package limiter): the YAML section
// "limits:".
//
//	limits:
//	  rules:
//	    - name: orders
//	      resource: "GET /orders/:id"     # exact name or pattern
//	      qps: 200
//	      burst: 20
//	      concurrency: 50
//	      loadTestShare: 0.5              # load-test traffic alone: at most 100/s, burst 10, 25 in flight
//	    - resource: "GET /orders/:id"
//	      class: loadtest                 # load-test traffic's own budget
//	      qps: 50
//	    - resource: "http:*"
//	      breaker: {strategy: error_ratio, threshold: 0.5, minRequests: 5, openFor: 10s}
//	    - resource: "POST /checkout"
//	      qps: 500
//	      warmUp: 10s                     # Sentinel's token warm-up from 500/3 per second
//	    - name: per-caller
//	      resource: "POST /orders"
//	      qps: 5                          # per value of the header
//	      param: {key: "header:X-Caller"}
//	  system: {cpu: 0.8, loadTestCpu: 0.6}
//
// Rules are validated in full at load; a reload with an invalid rule keeps
// the rules in force (state such as buckets and breakers carries over for
// rules whose name is unchanged).
type LimitsConfig struct {
	Rules []LimitRuleConfig `yaml:"rules"`
	// System enables adaptive system protection; absent means off.
	System *SystemLimitConfig `yaml:"system"`
}

// LimitRuleConfig is one rule; see [limiter.Rule] for the meaning of each
// field.
type LimitRuleConfig struct {
	Name          string         `yaml:"name"`
	Resource      string         `yaml:"resource"`
	Class         string         `yaml:"class"` // all (default), production, loadtest
	Env           string         `yaml:"env"`
	QPS           float64        `yaml:"qps"`
	Burst         int            `yaml:"burst"`
	MaxWait       time.Duration  `yaml:"maxWait"`
	WarmUp        time.Duration  `yaml:"warmUp"`
	ColdFactor    float64        `yaml:"coldFactor"`
	WarmUpMode    string         `yaml:"warmUpMode"` // token (default, Sentinel's) or linear
	Concurrency   int            `yaml:"concurrency"`
	LoadTestShare float64        `yaml:"loadTestShare"`
	DryRun        bool           `yaml:"dryRun"`
	Breaker       *BreakerConfig `yaml:"breaker"`
	// Param makes qps and burst apply per value of a request parameter
	// (hot-parameter and per-caller limits).
	Param *ParamLimitConfig `yaml:"param"`
}

// ParamLimitConfig is a hot-parameter limit; see [limiter.ParamRule].
//
//	rules:
//	  - resource: "POST /orders"
//	    qps: 5                          # per caller
//	    param: {key: "header:X-Caller", maxValues: 10000, overrides: {batch-importer: 50}}
type ParamLimitConfig struct {
	Key       string             `yaml:"key"` // "header:<Name>", "query:<name>", "metadata:<key>", or an application key
	MaxValues int                `yaml:"maxValues"`
	Overrides map[string]float64 `yaml:"overrides"`
}

// BreakerConfig is a circuit breaker; see [limiter.BreakerRule].
type BreakerConfig struct {
	Strategy    string        `yaml:"strategy"` // error_ratio, error_count, slow_ratio
	Threshold   float64       `yaml:"threshold"`
	SlowCall    time.Duration `yaml:"slowCall"`
	MinRequests int           `yaml:"minRequests"`
	Window      time.Duration `yaml:"window"`
	OpenFor     time.Duration `yaml:"openFor"`
	Probes      int           `yaml:"probes"`
}

// SystemLimitConfig is adaptive system protection; see [limiter.SystemRule].
type SystemLimitConfig struct {
	CPU         float64       `yaml:"cpu"`
	LoadTestCPU float64       `yaml:"loadTestCpu"`
	Window      time.Duration `yaml:"window"`
	CoolOff     time.Duration `yaml:"coolOff"`
	SampleEvery time.Duration `yaml:"sampleEvery"`
}

type limitsState struct {
	rules  []limiter.Rule
	system *limiter.SystemRule
}

var strategies = map[string]limiter.Strategy{
	"error_ratio": limiter.ErrorRatio,
	"error_count": limiter.ErrorCount,
	"slow_ratio":  limiter.SlowRatio,
}

// compileLimits validates c in full, naming each bad field
// ("limits.rules[2].qps").
func compileLimits(c LimitsConfig, errs []error) (*limitsState, []error) {
	st := &limitsState{}
	bad := func(field, msg string) { errs = append(errs, &FieldError{field, msg}) }
	names := map[string]int{}
	for i, rc := range c.Rules {
		f := fmt.Sprintf("limits.rules[%d]", i)
		r := limiter.Rule{
			Name: rc.Name, Resource: rc.Resource, Class: rc.Class, Env: rc.Env,
			QPS: rc.QPS, Burst: rc.Burst, MaxWait: rc.MaxWait, WarmUp: rc.WarmUp, ColdFactor: rc.ColdFactor, WarmUpMode: rc.WarmUpMode,
			Concurrency: rc.Concurrency, LoadTestShare: rc.LoadTestShare, DryRun: rc.DryRun,
		}
		if p := rc.Param; p != nil {
			r.Param = &limiter.ParamRule{Key: p.Key, MaxValues: p.MaxValues, Overrides: p.Overrides}
		}
		strategyOK := true
		if b := rc.Breaker; b != nil {
			s, ok := strategies[b.Strategy]
			if !ok {
				strategyOK = false
				bad(f+".breaker.strategy", fmt.Sprintf("%q: want error_ratio, error_count or slow_ratio", b.Strategy))
				s = limiter.ErrorCount // keep checking the other fields
			}
			r.Breaker = &limiter.BreakerRule{Strategy: s, Threshold: b.Threshold, SlowCall: b.SlowCall,
				MinRequests: b.MinRequests, Window: b.Window, OpenFor: b.OpenFor, Probes: b.Probes}
		}
		for _, e := range ruleProblems(r.Validate()) {
			if !strategyOK && e.Field == "breaker.threshold" {
				continue // judged against a stand-in strategy
			}
			field := f
			if e.Field != "" {
				field += "." + e.Field
			}
			bad(field, e.Msg)
		}
		if r.Resource != "" {
			if j, dup := names[ruleName(r)]; dup {
				bad(f+".name", fmt.Sprintf("%q: same name as limits.rules[%d] (give one a distinct name)", ruleName(r), j))
			} else {
				names[ruleName(r)] = i
			}
		}
		st.rules = append(st.rules, r)
	}
	if s := c.System; s != nil {
		st.system = &limiter.SystemRule{CPU: s.CPU, LoadTestCPU: s.LoadTestCPU, Window: s.Window, CoolOff: s.CoolOff, SampleEvery: s.SampleEvery}
		for _, e := range ruleProblems(limiter.ValidateSystem(st.system)) {
			bad("limits.system."+e.Field, e.Msg)
		}
	}
	return st, errs
}

// ruleName is the name the limiter gives r (its Name, else derived).
func ruleName(r limiter.Rule) string {
	n := r.Name
	if n == "" {
		n = r.Resource
		if r.Class != "" && r.Class != limiter.ClassAll {
			n += "|" + r.Class
		}
		if r.Env != "" {
			n += "|env=" + r.Env
		}
	}
	return n
}

// ruleProblems flattens a validation error into its *limiter.RuleError parts.
func ruleProblems(err error) []*limiter.RuleError {
	if err == nil {
		return nil
	}
	var out []*limiter.RuleError
	var walk func(error)
	walk = func(e error) {
		if re, ok := e.(*limiter.RuleError); ok {
			out = append(out, re)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, &limiter.RuleError{Msg: e.Error()})
	}
	walk(err)
	return out
}

// Limiter returns the runtime's flow limiter, whose rules and system
// protection come from the "limits:" config section and follow reloads.
// It is created on first use and kept for the runtime's whole life, so
// reloads keep rule state. Its counters are exported as OpenTelemetry
// metrics through the runtime's MeterProvider (see
// limiter.Limiter.RegisterMetrics), and a rule that starts or stops
// blocking is logged (rate-limited) as a warning.
// Adapters given WithRuntime(rt) (slgin.Limit, the gRPC limit
// interceptors, slsql, goredis, kafka) use it; without, the default
// runtime's. It is never nil.
func (rt *Runtime) Limiter() *limiter.Limiter {
	if l := rt.lim.Load(); l != nil {
		return l
	}
	rt.limMu.Lock()
	defer rt.limMu.Unlock()
	if l := rt.lim.Load(); l != nil {
		return l
	}
	l := rt.newLimiter()
	reg, err := l.RegisterMetrics(rt.meterOrGlobal().Meter("github.com/shadowlane/shadowlane/limiter"))
	if err != nil {
		rt.logger.Error("shadowlane: limiter metrics not registered", "err", err)
	}
	if reg != nil {
		rt.AddCloser(reg.Unregister)
	}
	rt.lim.Store(l)
	return l
}

// LimitsHandler serves the live view of the runtime's limiter: a page
// with charts of the last minute and the busiest resources, and its JSON
// form with ?format=json (see package limiter/dashboard). Mount it on an
// admin listener, e.g. at "/debug/limits/" with http.StripPrefix.
func (rt *Runtime) LimitsHandler() http.Handler { return dashboard.Handler(rt.Limiter()) }

func (rt *Runtime) newLimiter() *limiter.Limiter {
	logs := rt.logs
	return limiter.New(limiter.WithAlertFunc(func(a limiter.Alert) {
		if logs == nil {
			return
		}
		key := "limit:" + a.Rule + "|" + a.Resource
		if a.Blocking {
			key += "|start"
			logs.warn(key, "shadowlane: limit rule started blocking", "rule", a.Rule, "resource", a.Resource, "reason", a.Reason.String(), "class", a.Class)
		} else {
			key += "|stop"
			logs.warn(key, "shadowlane: limit rule stopped blocking", "rule", a.Rule, "resource", a.Resource, "blocked", a.Blocked, "for", a.Duration.String())
		}
	}))
}

// applyLimits makes a newly compiled limits config take effect. The config
// was validated by compileLimits, so the limiter accepts it.
func (rt *Runtime) applyLimits(c *compiled) {
	if c.limits == nil {
		return
	}
	l := rt.Limiter()
	err := errors.Join(l.SetRules(c.limits.rules), l.SetSystem(c.limits.system))
	if err != nil { // cannot happen after compileLimits; say so if it does
		rt.logger.Error("shadowlane: limits not applied, old rules kept", "err", err)
	}
}
