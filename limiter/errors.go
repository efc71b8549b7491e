package limiter

import (
	"errors"
	"strconv"
	"time"
)

// Sentinel errors. Every block returned by [Resource.Entry] is a
// *[BlockError] for which errors.Is(err, ErrBlocked) holds; the
// reason-specific sentinels match only blocks of that reason.
var (
	// ErrBlocked matches every *BlockError.
	ErrBlocked = errors.New("shadowlane/limiter: blocked")
	// ErrCircuitOpen matches blocks by an open (or probing) circuit breaker.
	ErrCircuitOpen = errors.New("shadowlane/limiter: circuit open")
	// ErrOverloaded matches blocks by adaptive system protection.
	ErrOverloaded = errors.New("shadowlane/limiter: system overloaded")
	// ErrInvalidRule is wrapped by every rule validation error.
	ErrInvalidRule = errors.New("shadowlane/limiter: invalid rule")
)

// Reason says which kind of check blocked a request.
type Reason uint8

// Block reasons.
const (
	ReasonQPS         Reason = iota + 1 // rate limit (token bucket / GCRA)
	ReasonConcurrency                   // too many requests in flight
	ReasonBreaker                       // circuit breaker open or probing
	ReasonSystem                        // adaptive system protection
	ReasonQueue                         // queue wait would exceed MaxWait or was cancelled
	ReasonParam                         // hot-parameter (per-value) rate limit
)

var reasonNames = [...]string{"unknown", "qps", "concurrency", "breaker", "system", "queue", "param"}

// String returns the reason's metric label: "qps", "concurrency", "breaker",
// "system", "queue" or "param".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// BlockError says that a request was refused, by which rule, and when to
// retry. Middleware maps it to HTTP 429 (Retry-After, RateLimit headers) or
// gRPC ResourceExhausted.
type BlockError struct {
	Resource   string        // the resource name given to Limiter.Resource
	Rule       string        // the rule's name (see Rule.Name)
	Reason     Reason        // which check refused
	Class      string        // traffic class of the request: "production" or "loadtest"
	Limit      float64       // the rule's limit: QPS, concurrency, error ratio, ...
	Value      float64       // the measured value that exceeded it (see Reason)
	RetryAfter time.Duration // a hint: when a retry may pass; 0 = unknown
	Param      string        // ReasonParam: the parameter value that is over its limit
}

// Error renders e for logs.
func (e *BlockError) Error() string {
	s := "shadowlane/limiter: " + e.Resource + " blocked by rule " + strconv.Quote(e.Rule) +
		" (" + e.Reason.String() + " " + strconv.FormatFloat(e.Value, 'g', 6, 64) +
		" > " + strconv.FormatFloat(e.Limit, 'g', 6, 64) + ", class " + e.Class + ")"
	if e.RetryAfter > 0 {
		s += ", retry after " + e.RetryAfter.String()
	}
	return s
}

// Is reports whether target is ErrBlocked or the sentinel of e's reason.
func (e *BlockError) Is(target error) bool {
	switch target {
	case ErrBlocked:
		return true
	case ErrCircuitOpen:
		return e.Reason == ReasonBreaker
	case ErrOverloaded:
		return e.Reason == ReasonSystem
	}
	return false
}
