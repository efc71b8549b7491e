package bustest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/bus/migrate"
)

// spy is a testing.TB that keeps what Check and Placed report.
type spy struct {
	testing.TB
	errs []string
}

func (s *spy) Helper()                      {}
func (s *spy) Logf(string, ...any)          {}
func (s *spy) Errorf(f string, args ...any) { s.errs = append(s.errs, fmt.Sprintf(f, args...)) }
func (s *spy) has(sub string) bool          { return strings.Contains(strings.Join(s.errs, "\n"), sub) }
func (s *spy) String() string               { return strings.Join(s.errs, "\n") }

// memBus is the two systems of a migration in memory: per side, per
// topic, the ids of the copies written (a marked message to name_shadow).
type memBus map[migrate.Side]map[string][]string

func (b memBus) sender(side migrate.Side) migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, topic string, m migrate.Message) error {
		if propagation.FromContext(ctx).LoadTest() {
			topic += "_shadow"
		}
		b[side][topic] = append(b[side][topic], m.ID)
		return nil
	})
}

// All four phases through a real Producer and Reader: each phase's
// messages are placed on the systems it writes, each is handled once from
// a side that phase reads, and the reader's counts add up.
func TestMigrationPhases(t *testing.T) {
	var phase atomic.Uint32
	src := migrate.SourceFunc(func() migrate.Plan {
		return migrate.Plan{Phase: migrate.Phase(phase.Load()), Topics: map[string]string{"orders": "orders2"}}
	})
	bus := memBus{migrate.Old: {}, migrate.New: {}}
	prod, err := migrate.NewProducer(src, bus.sender(migrate.Old), bus.sender(migrate.New))
	if err != nil {
		t.Fatal(err)
	}
	rd := migrate.NewReader(src, 0)
	mg := NewMigration(src)
	read := map[migrate.Side]map[string]int{migrate.Old: {}, migrate.New: {}} // copies consumed so far
	consume := func() {
		for _, side := range []migrate.Side{migrate.New, migrate.Old} { // the new side first: dual read keeps the first copy
			for topic, ids := range bus[side] {
				for _, id := range ids[read[side][topic]:] {
					run := ""
					if strings.HasSuffix(topic, "_shadow") {
						run = "r1"
					}
					if _, err := rd.Handle(side, id, func() error {
						mg.Handle(side, id, propagation.Mark{Run: run})
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				}
				read[side][topic] = len(ids)
			}
		}
	}
	for _, ph := range []migrate.Phase{migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly} {
		phase.Store(uint32(ph))
		for i := range 3 {
			for _, run := range []string{"", "r1"} {
				mg.Send(t, propagation.With(context.Background(), propagation.Mark{Run: run}), prod, "orders", &migrate.Message{Value: fmt.Append(nil, ph, i, run)})
			}
		}
		consume()
		mg.WaitRead(t, rd)
	}
	if n := len(mg.IDs()); n != 24 || len(mg.IDs(migrate.DualRead)) != 6 || mg.Copies() != 36 {
		t.Fatalf("%d ids, %d copies", n, mg.Copies())
	}
	for _, c := range []struct {
		side       migrate.Side
		topic, run string
	}{{migrate.Old, "orders", ""}, {migrate.Old, "orders_shadow", "r1"}, {migrate.New, "orders2", ""}, {migrate.New, "orders2_shadow", "r1"}} {
		mg.Placed(t, c.topic, c.side, c.run, bus[c.side][c.topic])
	}
	dups, first := mg.Check(t, rd)
	if dups != 0 || first[migrate.Old] != 12 || first[migrate.New] != 12 {
		t.Errorf("dups %d, first %v", dups, first)
	}
	if hs := mg.Handled(mg.IDs(migrate.DualWrite)[0]); len(hs) != 1 || hs[0].Side != migrate.Old || hs[0].Phase != migrate.DualWrite {
		t.Errorf("a dual-written message handled %+v, want once from the old system", hs)
	}

	// What the ledger reports.
	sp := &spy{TB: t}
	lost := mg.IDs(migrate.NewOnly)[0]
	mg.Placed(sp, "orders", migrate.Old, "", append([]string{"nope", lost}, bus[migrate.Old]["orders"][1:]...))
	for _, want := range []string{`id "nope" that was never sent`, "in phase new-only, which does not write here", "is there 0 times"} {
		if !sp.has(want) {
			t.Errorf("Placed did not report %q:\n%s", want, sp)
		}
	}
	sp = &spy{TB: t}
	mg.Placed(sp, "orders_shadow", migrate.Old, "", bus[migrate.Old]["orders_shadow"])
	if !sp.has(`want only run ""`) {
		t.Errorf("Placed took the shadow topic's messages for production ones:\n%s", sp)
	}
	mg.Send(t, context.Background(), prod, "orders", &migrate.Message{Value: []byte("never read")})
	mg.Handle(migrate.Old, lost, propagation.Mark{Env: "proj-x"}) // phase 3 reads the new system only
	mg.Handle(migrate.New, "nope", propagation.Mark{})
	sp = &spy{TB: t}
	if dups, _ := mg.Check(sp, rd); dups != 1 {
		t.Errorf("dups %d, want 1", dups)
	}
	for _, want := range []string{"lost (never handled)", "sent in phase new-only, handled from the old system (not written)",
		"handled from the old system in phase new-only (not read)", "handled under env=proj-x", `id "nope" that was never sent`, "want 25 handled"} {
		if !sp.has(want) {
			t.Errorf("Check did not report %q:\n%s", want, sp)
		}
	}
}

func TestWritesReads(t *testing.T) {
	for _, c := range []struct {
		p                      migrate.Phase
		wOld, wNew, rOld, rNew bool
	}{
		{migrate.Before, true, false, true, true},
		{migrate.DualWrite, true, true, true, false},
		{migrate.DualRead, true, true, true, true},
		{migrate.NewOnly, false, true, false, true},
	} {
		if Writes(c.p, migrate.Old) != c.wOld || Writes(c.p, migrate.New) != c.wNew || Reads(c.p, migrate.Old) != c.rOld || Reads(c.p, migrate.New) != c.rNew {
			t.Errorf("phase %s: writes %v %v, reads %v %v", c.p, Writes(c.p, migrate.Old), Writes(c.p, migrate.New), Reads(c.p, migrate.Old), Reads(c.p, migrate.New))
		}
	}
}
