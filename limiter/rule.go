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

	// WarmUp ramps the rate limit linearly from QPS/ColdFactor to QPS over
	// this period, starting with the rule's first request and again
	// whenever the rule has passed no request for a whole WarmUp period.
	// ColdFactor 0 means 3.
	WarmUp     time.Duration
	ColdFactor float64

	// Concurrency caps requests in flight (between Entry and Exit); 0
	// disables the check.
	Concurrency int

	// LoadTestShare, in (0, 1], is the fraction of this rule's burst and
	// concurrency that load-test traffic may use when the rule applies to
	// both classes; production traffic may use all of it. With a share
	// below 1, load-test traffic is refused first as the limit is
	// approached. 0 means 1 (no preference).
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
	if r.Burst < 0 {
		bad("burst", "negative (%d)", r.Burst)
	}
	if r.MaxWait < 0 {
		bad("maxWait", "negative (%v)", r.MaxWait)
	}
	if r.WarmUp < 0 {
		bad("warmUp", "negative (%v)", r.WarmUp)
	}
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
	if r.Concurrency < 0 {
		bad("concurrency", "negative (%d)", r.Concurrency)
	}
	if r.LoadTestShare < 0 || r.LoadTestShare > 1 || math.IsNaN(r.LoadTestShare) {
		bad("loadTestShare", "%v out of range (0, 1]", r.LoadTestShare)
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
