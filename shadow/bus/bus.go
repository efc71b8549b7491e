package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shadowlane/shadowlane/envtag"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// ErrConfig is wrapped by the error [New] returns for a bad configuration.
// Adapters wrap it again with their own configuration error.
var ErrConfig = errors.New("shadowlane/bus: invalid configuration")

// Names is a set of production names (topics, exchanges, queues, subjects)
// that have a shadow twin, with one "all" switch. The zero Names is empty.
// Build it before handing it to [New]; it is read-only afterwards.
type Names struct {
	all   bool
	set   map[string]struct{}
	match func(string) bool
}

// Add adds names to the set.
func (n *Names) Add(names ...string) {
	if n.set == nil {
		n.set = make(map[string]struct{}, len(names))
	}
	for _, s := range names {
		n.set[s] = struct{}{}
	}
}

// SetAll declares that every production name has a shadow twin.
func (n *Names) SetAll() { n.all = true }

// SetMatch adds a matcher: a name it accepts has a shadow twin (NATS
// subject patterns, say).
func (n *Names) SetMatch(f func(string) bool) { n.match = f }

// All reports whether the "all" switch is on.
func (n Names) All() bool { return n.all }

// Has reports whether name is in the set (or every name is).
func (n Names) Has(name string) bool {
	if n.all {
		return true
	}
	if _, ok := n.set[name]; ok {
		return true
	}
	return n.match != nil && n.match(name)
}

// List returns the names added with [Names.Add], sorted.
func (n Names) List() []string {
	out := make([]string, 0, len(n.set))
	for s := range n.set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Config is what an adapter tells [New] about one kind of destination.
type Config struct {
	// Store names the store on errors and counters ("kafka", "amqp", "nats").
	Store string
	// Kind names a destination in rule texts ("topic", "queue", "subject").
	Kind string
	// Naming derives shadow names from production names.
	Naming shadow.Naming
	// Names are the production names that have a shadow twin.
	Names Names
	// Env is this instance's environment ("" trunk). A lane instance
	// consumes "<name>-<env>" and takes only messages tagged env.
	Env string
	// Lanes says which environments have a live lane consumer, per
	// production consumer name. The trunk skips their messages; a lane
	// instance whose env is not (or no longer) listed for its consumer
	// takes nothing and lets its messages wait. nil: the trunk takes every
	// message and lane instances are always live.
	Lanes envtag.Lanes
	// FallbackRun is the run of a message read from a shadow target
	// without a run header (default [DefaultFallbackRun]).
	FallbackRun string
	// LoadTest reports whether load-test traffic is switched on (the kill
	// switch). While it reports false, marked messages wait. nil: always on.
	LoadTest func() bool
	// Target maps a production name to a low-cardinality counter target
	// (nil: the name itself).
	Target func(name string) string
	// Decisions returns the decision series the rules count in: the
	// adapter's Runtime's (shadowlane.OrDefault(rt).Decisions), looked up
	// per decision so a Runtime set by Init after the adapter was built is
	// used. nil: the default Runtime's ([shadow.Default]).
	Decisions func() *shadow.Series
}

// Rules are the produce and consume rules for one kind of destination. A
// Rules is immutable and safe for concurrent use.
type Rules struct{ c Config }

// New validates c and returns its rules.
func New(c Config) (*Rules, error) {
	if c.Store == "" || c.Kind == "" {
		return nil, fmt.Errorf("%w: store and kind must be named", ErrConfig)
	}
	if err := c.Naming.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s naming: %w", ErrConfig, c.Kind, err)
	}
	if c.Env != "" && !propagation.ValidID(c.Env) {
		return nil, fmt.Errorf("%w: env %q is not a valid id", ErrConfig, c.Env)
	}
	if c.FallbackRun == "" {
		c.FallbackRun = DefaultFallbackRun
	}
	if !propagation.ValidID(c.FallbackRun) {
		return nil, fmt.Errorf("%w: fallback run %q is not a valid id", ErrConfig, c.FallbackRun)
	}
	for n := range c.Names.set {
		if n == "" || c.Naming.IsShadow(n) {
			return nil, fmt.Errorf("%w: shadow %s list names %q, which is empty or already a shadow name", ErrConfig, c.Kind, n)
		}
	}
	return &Rules{c: c}, nil
}

// Config returns the configuration of r.
func (r *Rules) Config() Config { return r.c }

// Naming returns the naming of shadow names.
func (r *Rules) Naming() shadow.Naming { return r.c.Naming }

// Env returns this instance's environment ("" trunk).
func (r *Rules) Env() string { return r.c.Env }

// IsShadow reports whether name is a shadow name.
func (r *Rules) IsShadow(name string) bool { return r.c.Naming.IsShadow(name) }

// Production returns the production name name stands for.
func (r *Rules) Production(name string) string {
	p, _ := r.c.Naming.Production(name)
	return p
}

// Has reports whether the production name has a configured shadow twin.
func (r *Rules) Has(name string) bool {
	return name != "" && !r.c.Naming.IsShadow(name) && r.c.Names.Has(name)
}

// Shadow returns the shadow twin of a production name and whether it has
// one configured.
func (r *Rules) Shadow(name string) (string, bool) {
	if !r.Has(name) {
		return "", false
	}
	return r.c.Naming.Shadow(name), true
}

// ShadowName returns the shadow name of name, configured or not (for
// derived names: lane queues, consumer groups).
func (r *Rules) ShadowName(name string) string { return r.c.Naming.Shadow(name) }

// LaneName returns name for the trunk and "<name>-<env>" for a lane
// instance; a name that already carries the lane suffix is returned as it
// is, so applying it twice never gives "<name>-<env>-<env>".
func (r *Rules) LaneName(name string) string {
	if r.c.Env == "" || name == "" || r.IsLaneName(name) {
		return name
	}
	return name + "-" + r.c.Env
}

// IsLaneName reports whether name carries this lane instance's suffix.
func (r *Rules) IsLaneName(name string) bool {
	s := "-" + r.c.Env
	return r.c.Env != "" && len(name) > len(s) && name[len(name)-len(s):] == s
}

// Takes reports whether this instance's consumer of the production
// consumer name takes a message marked m: a lane takes only its own env;
// the trunk takes every message except those whose env has a live lane.
func (r *Rules) Takes(consumer string, m propagation.Mark) bool {
	if r.c.Env != "" {
		return m.Env == r.c.Env
	}
	return m.Env == "" || r.c.Lanes == nil || !r.c.Lanes.HasLane(consumer, m.Env)
}

// Live reports whether this instance takes messages of consumer at all: the
// trunk always does, a lane instance while its env is listed in the lanes
// for consumer (or no lanes are configured).
func (r *Rules) Live(consumer string) bool {
	return r.c.Env == "" || r.c.Lanes == nil || r.c.Lanes.HasLane(consumer, r.c.Env)
}

// LoadTestOn reports whether the kill switch lets load-test messages be
// handled.
func (r *Rules) LoadTestOn() bool { return r.c.LoadTest == nil || r.c.LoadTest() }

func (r *Rules) decisions() *shadow.Series {
	if r.c.Decisions != nil {
		return r.c.Decisions()
	}
	return shadow.Default()
}

func (r *Rules) target(name string) string {
	p := r.Production(name)
	if r.c.Target != nil {
		return r.c.Target(p)
	}
	return p
}

// Produce applies the produce rule to a message for name under mark m and
// counts the decision (see [shadow.Route]): it returns the destination to
// use, or a [*shadow.Error]. The caller then removes every mark header and
// writes the [Values] of m.
func (r *Rules) Produce(m propagation.Mark, name string) (string, *shadow.Error) {
	return shadow.Route(r.decisions(), r.c.Store, r.c.Kind, r.c.Naming, m, name, r.Has, r.c.Target)
}

// Recheck is [Rules.Produce] for a second seam that sees a message a
// wrapper may already have prepared (franz-go's produce hook behind the
// Producer wrapper): a marked message already on a configured shadow
// target is let through without being counted again, so one message is
// one decision.
func (r *Rules) Recheck(m propagation.Mark, name string) (string, *shadow.Error) {
	if m.Run != "" && m.Validate() == nil && r.c.Naming.IsShadow(name) && r.Has(r.Production(name)) {
		return name, nil
	}
	return r.Produce(m, name)
}

// Action is what a consumer does with one received message.
type Action uint8

const (
	// Handle: hand the message to the handler under [Decision.Mark], then
	// acknowledge it when the handler succeeded.
	Handle Action = iota
	// Skip: not this consumer's (another lane takes it, or a lane's copy of
	// a message the trunk refuses): acknowledge it without handling it.
	Skip
	// Refuse: never handled, neither as load test nor as production: the
	// refusal path (callback, dead letter), counted once.
	Refuse
	// Wait: neither handle nor acknowledge it now; take it again once
	// [Rules.Ready] reports true. How a client holds it is its own: no
	// commit (Kafka), kept unacknowledged or InProgress (RabbitMQ, NATS
	// JetStream, so no delivery is spent), retried later (RocketMQ); a
	// lane that left hands it back. The kill switch is off, or this lane
	// left the lanes.
	Wait
)

func (a Action) String() string {
	switch a {
	case Handle:
		return "handle"
	case Skip:
		return "skip"
	case Refuse:
		return "refuse"
	case Wait:
		return "wait"
	}
	return "unknown"
}

// Decision is the consume rule's verdict on one message.
type Decision struct {
	Action Action
	Mark   propagation.Mark // the message's mark (Handle, Skip, Wait)
	Err    *shadow.Error    // why (Refuse, Wait)
}

// Consume applies the consume rule to a message that consumer (the
// production consumer name the lanes are keyed by) received from source
// (the topic, queue or subject it was read from), whose mark headers d
// decoded:
//
//  1. a malformed or conflicting mark header: Refuse (wrapping
//     [shadow.ErrUnsupported]);
//  2. a run mark on a production source: an anomaly (the produce rule
//     only sends marked messages to shadow targets): Refuse (wrapping
//     [shadow.ErrBlocked]);
//  3. a message from a shadow source without a run header gets the
//     fallback run;
//  4. a lane instance whose env is not live for consumer: Wait;
//  5. a message another consumer takes ([Rules.Takes]): Skip;
//  6. a marked message while the kill switch is off: Wait (wrapping
//     [shadow.ErrKillSwitch]);
//  7. otherwise Handle.
//
// Refusals are decided and counted by the trunk only: a lane instance
// skips its copy, so a message is refused once, not once per consumer.
func (r *Rules) Consume(consumer, source string, d *Decoder) Decision {
	dec := r.consume(consumer, source, d)
	if dec.Action == Handle && dec.Mark.Run != "" { // production work never reads the switch
		r.killSwitch(source, &dec)
	}
	return dec
}

// killSwitch is step 6 of the consume rule: a marked message decided
// Handle waits while the kill switch is off. It is the only read of the
// switch in a consume decision. It changes d in place (no copy of the
// decision in and out on the production path).
func (r *Rules) killSwitch(source string, d *Decision) {
	if d.Action == Handle && d.Mark.Run != "" && !r.LoadTestOn() {
		*d = Decision{Action: Wait, Mark: d.Mark, Err: shadow.Refuse(r.c.Store, source, "kill switch", d.Mark, shadow.ErrKillSwitch)}
	}
}

// consume is the consume rule without its kill-switch step (steps 1-5
// and 7).
func (r *Rules) consume(consumer, source string, d *Decoder) Decision {
	m, refuse := r.Mark(source, d)
	if refuse != nil {
		if r.c.Env != "" {
			return Decision{Action: Skip, Mark: m}
		}
		r.decisions().Record("", r.c.Store, r.target(source), shadow.Block) // refused before any run is trusted
		return Decision{Action: Refuse, Mark: m, Err: refuse}
	}
	if !r.Live(consumer) {
		return Decision{Action: Wait, Mark: m, Err: shadow.Refuse(r.c.Store, source, "lane "+r.c.Env+" is not live for "+strconv.Quote(consumer), m, shadow.ErrBlocked)}
	}
	if !r.Takes(consumer, m) {
		return Decision{Action: Skip, Mark: m}
	}
	return Decision{Action: Handle, Mark: m}
}

// Ready reports whether a consumer that waited on decision d (Action Wait)
// may take messages again: the lane is live for consumer and, when d's
// message was marked, the kill switch is on. Consumers that hold messages
// back poll it.
func (r *Rules) Ready(consumer string, d Decision) bool {
	return r.Live(consumer) && (d.Mark.Run == "" || r.LoadTestOn())
}

// WaitReady polls [Rules.Ready] every poll until consumer may take
// messages again after waiting on decision d (true), or ctx ends (false).
func (r *Rules) WaitReady(ctx context.Context, consumer string, d Decision, poll time.Duration) bool {
	if r.Ready(consumer, d) {
		return true
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for !r.Ready(consumer, d) {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
