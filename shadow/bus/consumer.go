package bus

import (
	"fmt"
	"slices"
	"sync"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow"
)

// SetMarkHeaders rewrites the headers hs of a message for mark m, for any
// client's header type H: it removes every mark header (isMark, in any
// letter case) in place and appends the [Values] of m built with mk. For
// the zero mark and headers without a mark header it neither writes nor
// allocates (pass functions that capture nothing).
func SetMarkHeaders[H any](hs []H, m propagation.Mark, isMark func(*H) bool, mk func(key, value string) H) []H {
	n := 0
	for i := range hs {
		if isMark(&hs[i]) {
			continue
		}
		if n != i {
			hs[n] = hs[i]
		}
		n++
	}
	if n != len(hs) {
		clear(hs[n:])
		hs = hs[:n]
	}
	run, env := Values(m)
	if run != "" {
		hs = append(hs, mk(HeaderRun, run))
	}
	if env != "" {
		hs = append(hs, mk(HeaderEnv, env))
	}
	return hs
}

// Plan is one consumer group a consumer of a partitioned log runs: the
// production (or lane) group on the production topics, or the shadow
// group on their shadow twins.
type Plan struct {
	Group  string   // the consumer group joined
	Topics []string // the topics consumed
	Shadow bool     // shadow group on shadow topics
}

// Groups are the consumer-group rules of a partitioned log (Kafka): how
// shadow groups are named and which production groups get one.
type Groups struct {
	// Naming derives shadow group names (default [shadow.DefaultGroup]).
	Naming shadow.Naming
	// Shadowed are the production groups that get a shadow group.
	Shadowed Names
}

// Validate reports a naming that cannot be used or a shadowed group that
// is empty or already a shadow name (wrapping [ErrConfig]).
func (g Groups) Validate() error {
	if err := g.Naming.Validate(); err != nil {
		return fmt.Errorf("%w: group naming: %w", ErrConfig, err)
	}
	for _, n := range g.Shadowed.List() {
		if n == "" || g.Naming.IsShadow(n) {
			return fmt.Errorf("%w: shadow group list names %q, which is empty or already a shadow name", ErrConfig, n)
		}
	}
	return nil
}

// Plans returns the groups a consumer of the production group on topics
// joins: the group (its lane name for a lane instance, [Rules.LaneName])
// on topics, and, when the group is shadowed, its shadow group on the
// shadow twins of those topics that have one. It refuses a group that is
// empty, a shadow name or a lane name, and topics that are empty or
// shadow names (production consumers never read shadow topics).
func (r *Rules) Plans(g Groups, group string, topics []string) ([]Plan, error) {
	if group == "" || g.Naming.IsShadow(group) || r.IsLaneName(group) {
		return nil, fmt.Errorf("%w: consumer group %q is empty, a shadow name or a lane name; give the production group", ErrConfig, group)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("%w: no topics for group %q", ErrConfig, group)
	}
	var shadows []string
	for _, t := range topics {
		if t == "" || r.IsShadow(t) {
			return nil, fmt.Errorf("%w: topic %q is empty or a shadow topic; production consumers never read shadow topics", ErrConfig, t)
		}
		if st, ok := r.Shadow(t); ok {
			shadows = append(shadows, st)
		}
	}
	lg := r.LaneName(group)
	plans := []Plan{{Group: lg, Topics: slices.Clone(topics)}}
	if g.Shadowed.Has(group) && len(shadows) > 0 {
		plans = append(plans, Plan{Group: g.Naming.Shadow(lg), Topics: shadows, Shadow: true})
	}
	return plans, nil
}

// LaneGroup returns the group of env's lane instance beside the trunk's
// plan p of the production group ("<group>-<env>", or its shadow name for
// the shadow plan).
func (g Groups) LaneGroup(group, env string, p Plan) string {
	lg := group + "-" + env
	if p.Shadow {
		return g.Naming.Shadow(lg)
	}
	return lg
}

// TrunkGroup returns the trunk's group beside a lane instance's plan p of
// the production group (group, or its shadow name for the shadow plan).
func (g Groups) TrunkGroup(group string, p Plan) string {
	if p.Shadow {
		return g.Naming.Shadow(group)
	}
	return group
}

// StartWindow is the set of partitions whose start window is open on a
// lane instance (see [StartMetadata], [ReopenMetadata]). It is safe for
// concurrent use.
type StartWindow struct {
	mu   sync.Mutex
	open map[Partition]string // the metadata that opened it
}

// Load opens p's window when its commit metadata is [StartMetadata] or
// [ReopenMetadata].
func (w *StartWindow) Load(p Partition, meta string) {
	if meta != StartMetadata && meta != ReopenMetadata {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open == nil {
		w.open = map[Partition]string{}
	}
	w.open[p] = meta
}

// IsOpen reports whether p's window is open.
func (w *StartWindow) IsOpen(p Partition) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open[p] != ""
}

// Close closes p's window: the trunk skips the lane's records from here.
func (w *StartWindow) Close(p Partition) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, p)
}

// Metadata is the lane's commit metadata of p: the metadata that opened
// its window while it is open, "" after.
func (w *StartWindow) Metadata(p Partition) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.open[p]
}

// NewGrouped is [New] for a bus with consumer groups and in-place retries
// (Kafka, through franz-go or sarama): it validates the group rules g and
// the retry r as well.
func NewGrouped(c Config, g Groups, r Retry) (*Rules, error) {
	rules, err := New(c)
	if err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return rules, nil
}
