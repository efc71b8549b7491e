package shadow

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/shadowlane/shadowlane/propagation"
)

// Sentinel errors. Every error an adapter returns for a shadow decision is an
// [*Error] wrapping exactly one of these, so callers can use errors.Is.
var (
	// ErrNoShadowTarget: load-test work had nowhere safe to go (no shadow
	// table, key naming, instance, topic... configured). Fail closed.
	ErrNoShadowTarget = errors.New("no shadow target configured")
	// ErrUnsupported: the operation could not be understood well enough to
	// shadow it (unknown Redis command, SQL the parser rejects, DDL, a script
	// whose keys are not declared). Load-test traffic is refused.
	ErrUnsupported = errors.New("operation cannot be shadowed")
	// ErrBlocked: the operation is never allowed for load-test traffic
	// (server-wide commands, third-party calls, writes to read-through tables).
	ErrBlocked = errors.New("operation blocked for load-test traffic")
	// ErrShadowFromProduction: production (unmarked) traffic touched a shadow
	// target. The two-way guard refused it.
	ErrShadowFromProduction = errors.New("production traffic touched a shadow target")
	// ErrLostMark: an unmarked (production) operation carried data that only
	// load-test traffic uses (config testData:): a load-test datum reached
	// an exit without its mark, through a dropped context or an unwired
	// client. The lost-mark guard refused it.
	ErrLostMark = errors.New("load-test data without a load-test mark")
	// ErrKillSwitch: load-test traffic is switched off.
	ErrKillSwitch = errors.New("load-test traffic is switched off")
)

// Error is the typed error of a shadow decision. It names the store, the
// target and the rule that refused the operation.
type Error struct {
	Store  string           // "redis", "mysql", "postgres", "sqlite", "kafka", "amqp", "nats", "http", ...
	Target string           // the key, table, topic, queue, subject or host concerned
	Rule   string           // the rule that decided, in words: "no shadow table for orders"
	Mark   propagation.Mark // the mark of the refused operation
	Err    error            // one of the sentinel errors of this package
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("shadowlane: ")
	b.WriteString(e.Store)
	if e.Target != "" {
		b.WriteString(" ")
		b.WriteString(quoteClip(e.Target))
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("refused")
	}
	if e.Rule != "" {
		b.WriteString(" (")
		b.WriteString(e.Rule)
		b.WriteString(")")
	}
	if !e.Mark.IsZero() {
		b.WriteString(" [")
		b.WriteString(e.Mark.String())
		b.WriteString("]")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func quoteClip(s string) string {
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return "\"" + s + "\""
}

// Refuse builds an *Error and records the block.
func Refuse(store, target, rule string, m propagation.Mark, err error) *Error {
	return &Error{Store: store, Target: target, Rule: rule, Mark: m, Err: err}
}

// ErrorClass names the class of err for the per-run error reasons the
// adapters count ("<store> <class>", see [Series.RunError]): "timeout"
// (a deadline exceeded, a network timeout), "canceled" (the context was
// canceled), "closed" (a closed connection) or "" when err is none of
// these.
func ErrorClass(err error) string {
	var ne interface{ Timeout() bool }
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return ""
}
