package bus

// Hand-over of a lane's backlog on a partitioned log (Kafka, through
// franz-go or sarama): the client-neutral part, written once.
//
// While env E has a live lane for a consumer group G, the trunk skips E's
// records in G (and commits past them); the lane takes them in its own
// group "G-E". The trunk notes every skipped record in a [Skips] ledger:
// per env and partition, the spans of offsets in which it skipped E's
// records. The ledger travels with the trunk's commits: the commit of a
// partition carries the spans of that partition in its metadata
// ([Skips.Metadata], read back with [Skips.Load]), so a trunk instance
// that takes the partition over, or a trunk restarted before a hand-over
// finished, knows them.
//
// When E leaves the lanes, its lane instance stops at once and leaves its
// group: G-E's committed offsets are the hand-over point. The trunk then
// reads E's records in G-E from those offsets (as a member of G-E, so its
// commits are fenced by the group's generation), handles those that lie
// in a span it skipped ([Backlog.Owns]), commits them in G-E, and drops
// the spans ([Skips.Done]). Records of E outside the spans were the
// trunk's own and are passed over.
//
// The trunk that takes E's records again after E left also respects the
// lane's floor ([Skips.Floor]): an E record below G-E's committed offset
// was handled by the lane (a batch redelivered to the trunk after a crash
// can hold such records), so the trunk passes over it.

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/shadowlane/shadowlane/propagation"
)

// Partition names one partition of a topic.
type Partition struct {
	Topic     string
	Partition int32
}

// Span is the offsets [From, To) of one partition.
type Span struct{ From, To int64 }

// Backlog is the spans per partition that a trunk skipped for one env and
// must hand over.
type Backlog map[Partition][]Span

// Owns reports whether offset off of p lies in a span of b: a record of
// the env there was skipped by the trunk and is the hand-over's to handle
// (unless the lane committed past it).
func (b Backlog) Owns(p Partition, off int64) bool {
	for _, s := range b[p] {
		if off >= s.From && off < s.To {
			return true
		}
	}
	return false
}

// End returns the end of p's last span (0 when p has none): the hand-over
// of p is done once the lane's group committed up to it.
func (b Backlog) End(p Partition) int64 {
	var end int64
	for _, s := range b[p] {
		end = max(end, s.To)
	}
	return end
}

// Trim drops the partitions the lane's group committed past: committed
// returns a partition's committed offset and whether it has one.
func (b Backlog) Trim(committed func(Partition) (int64, bool)) {
	for p := range b {
		if at, ok := committed(p); ok && at >= b.End(p) {
			delete(b, p)
		}
	}
}

// Skips is a trunk consumer's ledger of the records it skipped because
// their env had a live lane (see the file comment). It is safe for
// concurrent use.
type Skips struct {
	mu      sync.Mutex
	open    map[string]map[Partition]Span // env -> span being skipped now (its lane is live)
	closed  map[string]Backlog            // env -> spans to hand over
	running map[string]Backlog            // env -> spans of the hand-over running
	floors  map[string]map[Partition]int64
}

// NewSkips returns an empty ledger.
func NewSkips() *Skips {
	return &Skips{open: map[string]map[Partition]Span{}, closed: map[string]Backlog{}, running: map[string]Backlog{}, floors: map[string]map[Partition]int64{}}
}

// Skip notes that the trunk skipped the record at off of p because env has
// a live lane. It forgets env's floor (the lane is live again).
func (s *Skips) Skip(env string, p Partition, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.floors, env)
	m := s.open[env]
	if m == nil {
		m = map[Partition]Span{}
		s.open[env] = m
	}
	sp, ok := m[p]
	if !ok || off < sp.From {
		sp.From = off
	}
	sp.To = max(sp.To, off+1)
	m[p] = sp
}

// Left notes that the trunk takes env's records again (its lane left):
// env's open spans are closed and wait for the hand-over.
func (s *Skips) Left(env string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked(env)
}

func (s *Skips) closeLocked(env string) {
	m := s.open[env]
	if len(m) == 0 {
		return
	}
	delete(s.open, env)
	for p, sp := range m {
		s.addClosedLocked(env, p, sp)
	}
}

// addClosedLocked adds sp to env's closed spans of p, merging it with the
// spans it overlaps (both were skipped, so their union was).
func (s *Skips) addClosedLocked(env string, p Partition, sp Span) {
	b := s.closed[env]
	if b == nil {
		b = Backlog{}
		s.closed[env] = b
	}
	b[p] = addSpan(b[p], sp)
}

func addSpan(list []Span, sp Span) []Span {
	out := list[:0:0]
	for _, x := range list {
		if x.To < sp.From || sp.To < x.From {
			out = append(out, x)
			continue
		}
		sp = Span{min(sp.From, x.From), max(sp.To, x.To)}
	}
	out = append(out, sp)
	slices.SortFunc(out, func(a, b Span) int { return cmp.Compare(a.From, b.From) })
	return out
}

// Tracking reports whether the ledger holds spans: the trunk then polls
// with a timeout, so that it notices a lane leaving without new records.
func (s *Skips) Tracking() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open) > 0 || len(s.closed) > 0 || len(s.running) > 0
}

// Has reports whether the ledger holds spans of env: the trunk skipped
// env's records for a live lane, so the lane may be leaving now (a trunk
// reading the lane's floor then waits for the lane to leave its group).
func (s *Skips) Has(env string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open[env]) > 0 || len(s.closed[env]) > 0 || len(s.running[env]) > 0
}

// Due closes the open spans of every env that takes reports the trunk
// takes again, and returns the backlog of each env to hand over now
// (closed spans, no hand-over of the env running, and takes(env) true);
// the caller runs each hand-over and reports it with [Skips.Done].
func (s *Skips) Due(takes func(env string) bool) map[string]Backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	for env := range s.open {
		if takes(env) {
			s.closeLocked(env)
		}
	}
	var out map[string]Backlog
	for env, b := range s.closed {
		if s.running[env] != nil || !takes(env) {
			continue
		}
		delete(s.closed, env)
		s.running[env] = b
		if out == nil {
			out = map[string]Backlog{}
		}
		out[env] = cloneBacklog(b)
	}
	return out
}

func cloneBacklog(b Backlog) Backlog {
	out := make(Backlog, len(b))
	for p, l := range b {
		out[p] = slices.Clone(l)
	}
	return out
}

// Done ends the hand-over of env: rest are the spans it did not finish
// (it stopped early); they wait for the next [Skips.Due].
func (s *Skips) Done(env string, rest Backlog) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, env)
	for p, l := range rest {
		for _, sp := range l {
			s.addClosedLocked(env, p, sp)
		}
	}
}

// Floor returns the lane floor of env on p: env's lane group's committed
// offset read after the lane left (see [Skips.SetFloor]). A record of env
// below it was handled by the lane; the trunk passes over it. known is
// false when the floor was not read since env's lane was last live.
func (s *Skips) Floor(env string, p Partition) (off int64, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, known := s.floors[env]
	return m[p], known
}

// SetFloor records env's lane group's committed offsets (nil or empty:
// the lane committed nothing), read once the lane's group had no members.
func (s *Skips) SetFloor(env string, committed map[Partition]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if committed == nil {
		committed = map[Partition]int64{}
	}
	s.floors[env] = committed
}

// metaPrefix starts the commit metadata a ledger writes.
const metaPrefix = "shadowlane.skips/1"

// MaxMetadata is the longest commit metadata [Skips.Metadata] writes
// (Kafka's offset.metadata.max.bytes is 4,096 by default).
const MaxMetadata = 4000

// Metadata returns the commit metadata of partition p: every span of p in
// the ledger (open, closed and running), so that whoever reads p's commit
// knows them. ok is false when they do not fit in [MaxMetadata]; the
// spans then live in this ledger only (meta is empty).
func (s *Skips) Metadata(p Partition) (meta string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	per := map[string][]Span{}
	for env, m := range s.open {
		if sp, ok := m[p]; ok {
			per[env] = addSpan(per[env], sp)
		}
	}
	for _, set := range []map[string]Backlog{s.closed, s.running} {
		for env, b := range set {
			for _, sp := range b[p] {
				per[env] = addSpan(per[env], sp)
			}
		}
	}
	if len(per) == 0 {
		return "", true
	}
	envs := make([]string, 0, len(per))
	for env := range per {
		envs = append(envs, env)
	}
	slices.Sort(envs)
	var b strings.Builder
	b.WriteString(metaPrefix)
	for _, env := range envs {
		b.WriteByte(';')
		b.WriteString(env)
		b.WriteByte('=')
		for i, sp := range per[env] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(sp.From, 10))
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(sp.To, 10))
		}
	}
	if b.Len() > MaxMetadata {
		return "", false
	}
	return b.String(), true
}

// ParseMetadata decodes commit metadata written by [Skips.Metadata]: the
// spans per env. Metadata that is not the ledger's (another client's, or
// empty) gives nil; malformed ledger metadata gives ok false.
func ParseMetadata(meta string) (spans map[string][]Span, ok bool) {
	rest, found := strings.CutPrefix(meta, metaPrefix)
	if !found {
		return nil, true
	}
	if rest == "" {
		return nil, true
	}
	if rest[0] != ';' {
		return nil, false
	}
	spans = map[string][]Span{}
	for _, part := range strings.Split(rest[1:], ";") {
		env, list, found := strings.Cut(part, "=")
		if !found || list == "" || !propagation.ValidID(env) {
			return nil, false
		}
		for _, x := range strings.Split(list, ",") {
			f, t, found := strings.Cut(x, "-")
			if !found {
				return nil, false
			}
			from, err1 := strconv.ParseInt(f, 10, 64)
			to, err2 := strconv.ParseInt(t, 10, 64)
			if err1 != nil || err2 != nil || from < 0 || to <= from {
				return nil, false
			}
			spans[env] = addSpan(spans[env], Span{from, to})
		}
	}
	return spans, true
}

// Load adds the spans of p's commit metadata (written by [Skips.Metadata],
// by this or another trunk instance) to the ledger as closed spans: the
// trunk hands them over once their env's lane is gone. It reports whether
// meta was ledger metadata it could read.
func (s *Skips) Load(p Partition, meta string) bool {
	spans, ok := ParseMetadata(meta)
	if !ok || spans == nil {
		return ok && spans != nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for env, l := range spans {
		for _, sp := range l {
			if r := s.running[env]; r != nil && covered(r[p], sp) {
				continue
			}
			s.addClosedLocked(env, p, sp)
		}
	}
	return true
}

func covered(list []Span, sp Span) bool {
	for _, x := range list {
		if x.From <= sp.From && sp.To <= x.To {
			return true
		}
	}
	return false
}

// StartMetadata is the commit metadata a new lane group's start is
// pinned with (and that the lane keeps writing for a partition while its
// start window is open): the lane's first records of that partition may
// have been handled by the trunk before the trunk saw the lane listed, so
// the lane checks each against the trunk's commits ([TrunkDecision])
// until the first one the trunk skipped.
const StartMetadata = "shadowlane.start/1"

// ReopenMetadata is the commit metadata of a lane group whose start
// window is open again: the lane left (it writes it on its way out, and
// the trunk's hand-over keeps it), and when it comes back it passes over
// what the trunk took meanwhile. Unlike [StartMetadata], the offset it is
// committed with is a floor: the lane (or the hand-over) handled what lies
// below it.
const ReopenMetadata = "shadowlane.start/1;reopened"

// IsFloor reports whether a lane group's commit with metadata meta is a
// floor (what lies below was handled by the lane or a hand-over): every
// commit but a pinned start ([StartMetadata]), below which the lane
// handled nothing.
func IsFloor(meta string) bool { return meta != StartMetadata }

// TrunkDecision reads, from the trunk group's commit of a partition
// (committed: its offset, ok false when it has none; meta: its metadata),
// what the trunk did with env's record at off: decided is false while the
// trunk has not committed past it; skipped reports that it lies in one of
// the spans the trunk skipped for env (the lane's to handle) and not that
// the trunk handled it.
func TrunkDecision(committed int64, ok bool, meta, env string, off int64) (skipped, decided bool) {
	if !ok || committed <= off {
		return false, false
	}
	spans, _ := ParseMetadata(meta)
	for _, sp := range spans[env] {
		if off >= sp.From && off < sp.To {
			return true, true
		}
	}
	return false, true
}
