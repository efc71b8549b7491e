package limiter

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/shadowlane/shadowlane/propagation"
)

// Traffic classes a rule can be scoped to (Rule.Class).
const (
	ClassAll        = "all"                       // every request (the default)
	ClassProduction = propagation.ClassProduction // requests without a load-test mark
	ClassLoadTest   = propagation.ClassLoadTest   // requests with a load-test mark
)

// Rule limits one resource, or every resource matching a pattern, for one
// traffic class.
//
// A rule may set any combination of QPS and Concurrency; each set limit is an
// independent check and a request must pass all checks of all rules that
// apply to it. Rules are matched against resource names once, when the
// resource handle is made or the rules change, never per request.
type Rule struct {
	// Name identifies the rule in errors, metrics and logs. When empty it is
	// derived from Resource, Class and Env. Rules keep their state (bucket,
	// in-flight count) across [Limiter.SetRules] when their name is unchanged.
	Name string

	// Resource is an exact resource name or a pattern, split on '/':
	//   - a segment starting with ':' matches any one non-empty segment
	//     ("GET /orders/:id" matches "GET /orders/42" and "GET /orders/:id");
	//   - a final segment "*" matches one or more remaining segments
	//     ("/order.v1.Orders/*", or "*" alone for every resource);
	//   - other segments are path.Match globs ("redis:*", "redis:[GS]ET").
	// A pattern rule applies to each matching resource separately: every
	// resource gets its own bucket and in-flight count.
	Resource string

	// Class scopes the rule to a traffic class: "" or "all", "production"
	// or "loadtest" (see propagation.Mark.Class).
	Class string
	// Env, when set, further scopes the rule to requests whose mark carries
	// this environment tag.
	Env string

	// QPS is the sustained rate in requests per second; 0 disables the rate
	// check. Burst is how many requests may pass at once after an idle
	// period; 0 means max(1, QPS/10), i.e. 100 ms worth of traffic.
	QPS   float64
	Burst int

	// MaxWait makes the rate check queue (pace) requests instead of
	// refusing them: a request that would be refused waits for its slot
	// when the wait is at most MaxWait. 0 refuses at once.
	MaxWait time.Duration

	// WarmUp makes a cold rule start at QPS/ColdFactor and reach QPS over
	// about this period (ColdFactor 0 means 3); WarmUpMode says how.
	WarmUp     time.Duration
	ColdFactor float64
	// WarmUpMode is WarmUpToken (the default, "" or "token"): Sentinel's
	// token-bucket warm-up (Guava's SmoothWarmingUp), which also goes cold
	// again while traffic stays below QPS/ColdFactor; or WarmUpLinear
	// ("linear"): the rate ramps linearly in time from the first request,
	// and again after a whole WarmUp period without a request. See
	// [WarmUpToken] for the exact semantics.
	WarmUpMode string

	// Concurrency caps requests in flight (between Entry and Exit); 0
	// disables the check.
	Concurrency int

	// LoadTestShare, in (0, 1], is the load-test class's share of this
	// rule when it applies to both classes: load-test traffic alone gets
	// at most share×QPS, share×Burst and share×Concurrency (each rounded
	// down but never below one request), while production traffic may use
	// all of the rule. Load-test traffic is also refused first as the
	// limit nears: in the rate bucket both classes share, it may use only
	// its share of the burst, and its in-flight slots count against the
	// shared concurrency. 0 means 1 (no preference). A rule scoped to one
	// class, or a param rule, may not set it.
	LoadTestShare float64

	// Breaker, when non-nil, adds a circuit breaker (see [BreakerRule]).
	Breaker *BreakerRule

	// Param, when non-nil, makes QPS and Burst apply per value of a
	// request parameter (hot-parameter and per-caller limits; see
	// [ParamRule]).
	Param *ParamRule

	// DryRun makes every check of the rule count what it would block
	// (see [Limiter.Stats]) and block nothing.
	DryRun bool
}

// Warm-up modes (Rule.WarmUpMode).
const (
	// WarmUpToken is Sentinel's warm-up (its WarmUp token calculate
	// strategy, after Guava's SmoothWarmingUp), second by second on the
	// limiter's clock, counted from the limiter's creation: the rule keeps
	// stored tokens, at most maxToken = warningToken +
	// 2·W·QPS/(1+coldFactor) with warningToken = W·QPS/(coldFactor-1) (W is
	// WarmUp in seconds); at each new second it adds QPS tokens per
	// elapsed second (while stored < warningToken, or above it while the
	// previous second passed fewer than ⌊⌊QPS⌋/coldFactor⌋) and removes
	// the previous second's passed requests. Its threshold is QPS while
	// stored < warningToken, else 1/((stored-warningToken)·slope + 1/QPS)
	// with slope = (coldFactor-1)/QPS/(maxToken-warningToken): QPS/coldFactor
	// when full. A request passes while the requests passed in the last
	// second (two 500 ms buckets, as Sentinel's default statistic) plus one
	// do not exceed the threshold. A new rule starts cold (full), and the
	// rule cools again whenever traffic stays below QPS/coldFactor.
	WarmUpToken = "token"
	// WarmUpLinear ramps the GCRA rate linearly in time from QPS/coldFactor
	// to QPS over WarmUp, from the first request and again after a whole
	// WarmUp period without one; low but steady traffic keeps it warm.
	WarmUpLinear = "linear"
)

func (r *Rule) warmUpMode() string {
	if r.WarmUpMode == "" {
		return WarmUpToken
	}
	return r.WarmUpMode
}

func (r *Rule) coldFactor() float64 {
	if r.ColdFactor == 0 {
		return 3
	}
	return r.ColdFactor
}

// share is the load-test share in force: 1 unless the rule applies to both
// classes and sets one.
func (r *Rule) share() float64 {
	if r.LoadTestShare == 0 || (r.Class != "" && r.Class != ClassAll) {
		return 1
	}
	return r.LoadTestShare
}

// burst is Burst, or its default max(1, QPS/10).
func (r *Rule) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(1, int(r.QPS/10))
}

func (r *Rule) name() string {
	if r.Name != "" {
		return r.Name
	}
	s := r.Resource
	if r.Class != "" && r.Class != ClassAll {
		s += "|" + r.Class
	}
	if r.Env != "" {
		s += "|env=" + r.Env
	}
	return s
}

// Validate reports everything wrong with r: each problem is a
// *[RuleError] naming the field, and all wrap [ErrInvalidRule].
func (r *Rule) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &RuleError{Rule: r.name(), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if r.Resource == "" {
		bad("resource", "empty")
	} else if err := validPattern(r.Resource); err != nil {
		bad("resource", "pattern: %v", err)
	}
	switch r.Class {
	case "", ClassAll, ClassProduction, ClassLoadTest:
	default:
		bad("class", "%q is not one of all, production, loadtest", r.Class)
	}
	if r.Env != "" && !propagation.ValidID(r.Env) {
		bad("env", "%q is not 1..%d bytes of [A-Za-z0-9_-]", r.Env, propagation.MaxIDLen)
	}
	if r.QPS < 0 || math.IsNaN(r.QPS) || math.IsInf(r.QPS, 0) || r.QPS > 1e9 {
		bad("qps", "%v out of range [0, 1e9]", r.QPS)
	}
	nonNegative(bad, "burst", r.Burst)
	nonNegative(bad, "maxWait", r.MaxWait)
	nonNegative(bad, "warmUp", r.WarmUp)
	if r.ColdFactor != 0 && !(r.ColdFactor > 1 && r.ColdFactor <= 100) {
		bad("coldFactor", "%v out of range (1, 100]", r.ColdFactor)
	}
	if r.QPS == 0 {
		for _, f := range []struct {
			name string
			set  bool
		}{{"burst", r.Burst > 0}, {"maxWait", r.MaxWait > 0}, {"warmUp", r.WarmUp > 0}} {
			if f.set {
				bad(f.name, "needs a qps limit")
			}
		}
	}
	nonNegative(bad, "concurrency", r.Concurrency)
	if r.LoadTestShare < 0 || r.LoadTestShare > 1 || math.IsNaN(r.LoadTestShare) {
		bad("loadTestShare", "%v out of range (0, 1]", r.LoadTestShare)
	}
	if r.LoadTestShare != 0 && r.LoadTestShare != 1 {
		if r.Class != "" && r.Class != ClassAll {
			bad("loadTestShare", "applies only to a rule for both classes (class is %q)", r.Class)
		}
		if r.Param != nil {
			bad("loadTestShare", "not supported on a param rule")
		}
	}
	switch r.WarmUpMode {
	case "", WarmUpToken, WarmUpLinear:
	default:
		bad("warmUpMode", "%q is not one of token, linear", r.WarmUpMode)
	}
	if r.WarmUp > 0 && r.QPS > 0 && r.warmUpMode() == WarmUpToken {
		// Sentinel's warm-up admits while passed+1 <= the current
		// threshold, which starts at QPS/coldFactor: below one request
		// per second, nothing ever passes and the rule never warms.
		cf := r.coldFactor()
		if r.QPS/cf < 1 {
			bad("warmUp", "cold threshold qps/coldFactor = %.3g is below 1 request per second: the rule would never pass a request (raise qps, lower coldFactor or use warmUpMode: linear)", r.QPS/cf)
		} else if sh := r.share(); sh < 1 && r.QPS*sh/cf < 1 {
			bad("loadTestShare", "load-test cold threshold qps×share/coldFactor = %.3g is below 1 request per second: load-test traffic would never pass (raise the share or use warmUpMode: linear)", r.QPS*sh/cf)
		}
		if r.MaxWait > 0 {
			bad("maxWait", "token warm-up does not queue; use warmUpMode: linear to queue during warm-up")
		}
		if r.WarmUp < time.Second {
			bad("warmUp", "%v: token warm-up works in whole seconds; want at least 1s", r.WarmUp)
		}
	}
	if r.Breaker != nil {
		for _, e := range r.Breaker.validate() {
			bad("breaker."+e.field, "%s", e.msg)
		}
	}
	if r.Param != nil {
		for _, e := range r.Param.validate(r) {
			bad("param."+e.field, "%s", e.msg)
		}
	}
	if r.QPS == 0 && r.Concurrency == 0 && r.Breaker == nil {
		bad("", "sets no limit (qps, concurrency or breaker)")
	}
	return errors.Join(errs...)
}

// RuleError is one problem with a rule, naming the field in the spelling
// of the YAML config ("qps", "breaker.threshold"); Field is empty for a
// problem with the rule as a whole. It wraps [ErrInvalidRule].
type RuleError struct {
	Rule  string // the rule's name (see Rule.Name)
	Field string
	Msg   string
}

func (e *RuleError) Error() string {
	s := "shadowlane/limiter: invalid rule " + strconv.Quote(e.Rule) + ": "
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Unwrap returns [ErrInvalidRule].
func (e *RuleError) Unwrap() error { return ErrInvalidRule }

type fieldProblem struct{ field, msg string }

// nonNegative reports field as negative when v < 0 (a rule's counts and
// durations: 0 means the default or none).
func nonNegative[T ~int | ~int64](bad func(field, format string, args ...any), field string, v T) {
	if v < 0 {
		bad(field, "negative (%v)", v)
	}
}

// validPattern checks every glob segment of p.
func validPattern(p string) error {
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ":") || seg == "*" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("segment %q: %v", seg, err)
		}
	}
	return nil
}

// Match reports whether the resource name matches pattern, with the
// semantics documented on [Rule.Resource].
func Match(pattern, name string) bool {
	if pattern == name {
		return true
	}
	for {
		pseg, prest, pmore := strings.Cut(pattern, "/")
		nseg, nrest, nmore := strings.Cut(name, "/")
		switch {
		case pseg == "*" && !pmore:
			return nseg != "" || nmore
		case strings.HasPrefix(pseg, ":"):
			if nseg == "" {
				return false
			}
		default:
			if ok, err := path.Match(pseg, nseg); err != nil || !ok {
				return false
			}
		}
		if pmore != nmore {
			return false
		}
		if !pmore {
			return true
		}
		pattern, name = prest, nrest
	}
}
