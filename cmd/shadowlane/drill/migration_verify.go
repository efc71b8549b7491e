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
	s.invs = append(s.invs, Invariant{Name: "migration " + s.m.old.names().kind + "->" + s.m.new.names().kind + ": " + name, Expected: want, Observed: got, OK: want == got, Detail: detail})
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
	old, nw := s.m.old.names(), s.m.new.names()
	s.rep.From, s.rep.To = old.label, nw.label
	s.rep.Reader = s.reader.Stats()

	// Where each sent event must be: old system in phases 1-2, new in 1-3;
	// the shadow target for marked events, production for the others.
	type target struct {
		name   string
		shadow bool
		phases []migrate.Phase
		read   func() ([]migCopy, error)
	}
	var targets []target
	for _, b := range []migBus{s.m.old, s.m.new} {
		phases := []migrate.Phase{migrate.DualWrite, migrate.DualRead}
		if b == s.m.new {
			phases = append(phases, migrate.NewOnly)
		}
		for _, sh := range []bool{false, true} {
			targets = append(targets, target{b.names().target(sh), sh, phases, func() ([]migCopy, error) { return b.readBack(ctx, sh) }})
		}
	}
	copies, withID, markedOK, markedCopies, envOK, envCopies := 0, 0, 0, 0, 0, 0
	for _, t := range targets {
		want := map[string]bool{}
		for _, id := range s.idsSent {
			if (s.kindOf[id] == migLoad) == t.shadow && containsPhase(t.phases, s.phaseOf[id]) {
				want[id] = true
			}
		}
		got, err := t.read()
		detail := ""
		if err != nil {
			detail = "read back: " + err.Error()
		}
		s.rep.Targets[t.name] = len(got)
		seen := map[string]int{}
		extra := 0
		for _, c := range got {
			copies++
			if c.id != "" && c.id == c.bodyID {
				withID++
			}
			seen[c.bodyID]++
			if !want[c.bodyID] {
				extra++
			}
			switch s.kindOf[c.bodyID] {
			case migLoad:
				markedCopies++
				if c.run == s.m.run {
					markedOK++
				}
			case migEnv:
				envCopies++
				if c.env == s.m.env && c.run == "" {
					envOK++
				}
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
	s.add("every copy carries the message id across systems", copies, withID, "")
	s.add("marked copies carry their run on both systems' shadow targets", markedCopies, markedOK, "")
	s.add("env-tagged copies carry their env tag, unmarked, across the map", envCopies, envOK, "")

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
				if x.run == s.m.run && (old.isShadow(x.source) || nw.isShadow(x.source)) {
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
