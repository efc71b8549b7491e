package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// migCopy is one message read back from a broker with a plain client.
type migCopy struct {
	id, bodyID, run, env string
}

func (s *migScenario) add(name string, want, got int, detail string) {
	s.invs = append(s.invs, Invariant{Name: "migration " + s.m.old.kind() + "->" + s.m.new.kind() + ": " + name, Expected: want, Observed: got, OK: want == got, Detail: detail})
}

func bodyID(b []byte) string {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &ev)
	return ev.ID
}

// verify reads both brokers back and checks the scenario's invariants.
func (s *migScenario) verify(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rep.From, s.rep.To = s.m.old.label(), s.m.new.label()
	s.rep.Reader = s.reader.Stats()
	s.verifyTargets(ctx)
	s.verifyHandled()
}

// migTarget is one place a sent event may be copied to: a system's
// production or shadow target, written in phases.
type migTarget struct {
	name   string
	bus    migBus
	shadow bool
	phases []migrate.Phase
}

// migTargets lists where each sent event must be: old system in phases
// 1-2, new in 1-3; the shadow target for marked events, production for
// the others.
func (s *migScenario) migTargets() []migTarget {
	var targets []migTarget
	for _, b := range []migBus{s.m.old, s.m.new} {
		phases := []migrate.Phase{migrate.DualWrite, migrate.DualRead}
		if b == s.m.new {
			phases = append(phases, migrate.NewOnly)
		}
		for _, sh := range []bool{false, true} {
			targets = append(targets, migTarget{b.target(sh), b, sh, phases})
		}
	}
	return targets
}

// migTally counts the copies read back over all targets: all of them,
// those carrying the message id, and the marked and env-tagged ones with
// those carrying their run or env tag right.
type migTally struct {
	copies, withID, markedOK, markedCopies, envOK, envCopies int
}

// verifyTargets reads every target back and checks that each holds the
// events its phases wrote, once, and nothing else, and that the copies
// carry their id, run and env tag. s.mu is held.
func (s *migScenario) verifyTargets(ctx context.Context) {
	var n migTally
	for _, t := range s.migTargets() {
		s.verifyTarget(ctx, t, &n)
	}
	s.add("every copy carries the message id across systems", n.copies, n.withID, "")
	s.add("marked copies carry their run on both systems' shadow targets", n.markedCopies, n.markedOK, "")
	s.add("env-tagged copies carry their env tag, unmarked, across the map", n.envCopies, n.envOK, "")
}

// verifyTarget reads t back, records its count in the report, checks its
// contents against the events its phases wrote and tallies its copies
// into n. s.mu is held.
func (s *migScenario) verifyTarget(ctx context.Context, t migTarget, n *migTally) {
	want := map[string]bool{}
	for _, id := range s.idsSent {
		if (s.kindOf[id] == migLoad) == t.shadow && containsPhase(t.phases, s.phaseOf[id]) {
			want[id] = true
		}
	}
	got, err := t.bus.readBack(ctx, t.shadow)
	detail := ""
	if err != nil {
		detail = "read back: " + err.Error()
	}
	s.rep.Targets[t.name] = len(got)
	seen := map[string]int{}
	extra := 0
	for _, c := range got {
		s.tally(c, n)
		seen[c.bodyID]++
		if !want[c.bodyID] {
			extra++
		}
	}
	present := 0
	for id := range want {
		if seen[id] == 1 {
			present++
		}
	}
	side := "production"
	if t.shadow {
		side = "shadow"
	}
	s.add(fmt.Sprintf("%s (%s) holds each event its phases wrote, once", t.name, side), len(want), present, detail)
	s.add(fmt.Sprintf("%s (%s) holds nothing else", t.name, side), 0, extra, "")
}

// tally counts copy c into n. s.mu is held.
func (s *migScenario) tally(c migCopy, n *migTally) {
	n.copies++
	if c.id != "" && c.id == c.bodyID {
		n.withID++
	}
	switch s.kindOf[c.bodyID] {
	case migLoad:
		n.markedCopies++
		if c.run == s.m.run {
			n.markedOK++
		}
	case migEnv:
		n.envCopies++
		if c.env == s.m.env && c.run == "" {
			n.envOK++
		}
	}
}

// verifyHandled checks the consumers' side: every event handled exactly
// once, marked events under their mark from shadow targets, and that the
// phases switched and each sent events. It counts the handlings per side
// into the report. s.mu is held.
func (s *migScenario) verifyHandled() {
	once, twice, lost, markedRight, marked := 0, 0, 0, 0, 0
	var twiceIDs []string
	for _, id := range s.idsSent {
		h := s.handled[id]
		switch len(h) {
		case 0:
			lost++
		case 1:
			once++
		default:
			twice++
			twiceIDs = append(twiceIDs, id)
		}
		for _, x := range h {
			s.rep.Handled[x.side.String()]++
			if s.kindOf[id] == migLoad {
				marked++
				if x.run == s.m.run && (s.m.old.isShadow(x.source) || s.m.new.isShadow(x.source)) {
					markedRight++
				}
			}
		}
	}
	sort.Strings(twiceIDs)
	detail := ""
	if twice > 0 {
		detail = "e.g. " + twiceIDs[0]
	}
	s.add("every event handled exactly once", len(s.idsSent), once, fmt.Sprintf("%d lost", lost))
	s.add("events handled twice", 0, twice, detail)
	s.add("marked events handled under their mark, read from shadow targets", marked, markedRight, "")
	s.add("phase switches by config reload while events were being sent (1->2, 2->3)", 2, s.switches, s.rep.Error)
	inPhases := 0
	for _, p := range []migrate.Phase{migrate.DualWrite, migrate.DualRead, migrate.NewOnly} {
		if s.sentIn[p] > 0 {
			inPhases++
		}
	}
	s.add("phases that sent events", 3, inPhases, "")
}

func containsPhase(l []migrate.Phase, p migrate.Phase) bool {
	for _, x := range l {
		if x == p {
			return true
		}
	}
	return false
}
