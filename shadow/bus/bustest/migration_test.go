package bustest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
type memBus struct {
	mu sync.Mutex
	m  map[migrate.Side]map[string][]string
}

func (b *memBus) sender(side migrate.Side) migrate.Sender {
	return migrate.SenderFunc(func(ctx context.Context, topic string, m migrate.Message) error {
		if propagation.FromContext(ctx).LoadTest() {
			topic += "_shadow"
		}
		b.mu.Lock()
		b.m[side][topic] = append(b.m[side][topic], m.ID)
		b.mu.Unlock()
		return nil
	})
}

func (b *memBus) topic(side migrate.Side, topic string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.m[side][topic])
}

// consume reads the copies of side's topics through rd until ctx ends,
// recording the handled ones in mg.
func (b *memBus) consume(ctx context.Context, side migrate.Side, rd *migrate.Reader, mg *Migration) {
	read := map[string]int{}
	for ctx.Err() == nil {
		for _, topic := range []string{"orders", "orders_shadow", "orders2", "orders2_shadow"} {
			ids := b.topic(side, topic)
			for _, id := range ids[read[topic]:] {
				run := ""
				if strings.HasSuffix(topic, "_shadow") {
					run = "r1"
				}
				_, _ = rd.Handle(side, id, func() error {
					mg.Handle(side, id, propagation.Mark{Run: run})
					return nil
				})
			}
			read[topic] = len(ids)
		}
		time.Sleep(time.Millisecond)
	}
}

// All four phases through a real Producer and Reader, consumers of both
// sides running throughout: each phase's messages are placed on the
// systems it writes, each is handled once from a side that phase reads,
// and the reader's counts add up.
func TestMigrationPhases(t *testing.T) {
	ph := NewPhases(migrate.Before, map[string]string{"orders": "orders2"})
	bus := &memBus{m: map[migrate.Side]map[string][]string{migrate.Old: {}, migrate.New: {}}}
	prod, err := migrate.NewProducer(ph, bus.sender(migrate.Old), bus.sender(migrate.New))
	if err != nil {
		t.Fatal(err)
	}
	rd := migrate.NewReader(ph, 0)
	mg := NewMigration(ph)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, side := range []migrate.Side{migrate.Old, migrate.New} {
		wg.Go(func() { bus.consume(ctx, side, rd, mg) })
	}
	mg.Drive(t, ph, prod, rd, "orders", 3, []propagation.Mark{{}, {Run: "r1"}}, migrate.Before, migrate.DualWrite, migrate.DualRead, migrate.NewOnly)
	cancel()
	wg.Wait()
	if n := len(mg.IDs()); n != 24 || len(mg.IDs(migrate.DualRead)) != 6 || mg.Copies() != 36 {
		t.Fatalf("%d ids, %d copies", n, mg.Copies())
	}
	for _, c := range []struct {
		side       migrate.Side
		topic, run string
	}{{migrate.Old, "orders", ""}, {migrate.Old, "orders_shadow", "r1"}, {migrate.New, "orders2", ""}, {migrate.New, "orders2_shadow", "r1"}} {
		mg.Placed(t, c.topic, c.side, c.run, bus.topic(c.side, c.topic))
	}
	dups, first := mg.Check(t, rd)
	if dups != 0 || first[migrate.Old] < 12 || first[migrate.New] < 6 || first[migrate.Old]+first[migrate.New] != 24 {
		t.Errorf("dups %d, first %v", dups, first)
	}
	if hs := mg.Handled(mg.IDs(migrate.DualWrite)[0]); len(hs) != 1 || hs[0].Side != migrate.Old || hs[0].Phase != migrate.DualWrite {
		t.Errorf("a dual-written message handled %+v, want once from the old system", hs)
	}

	// What the ledger reports.
	sp := &spy{TB: t}
	lost := mg.IDs(migrate.NewOnly)[0]
	mg.Placed(sp, "orders", migrate.Old, "", append([]string{"nope", lost}, bus.topic(migrate.Old, "orders")[1:]...))
	for _, want := range []string{`id "nope" that was never sent`, "in phase new-only, which does not write here", "is there 0 times"} {
		if !sp.has(want) {
			t.Errorf("Placed did not report %q:\n%s", want, sp)
		}
	}
	sp = &spy{TB: t}
	mg.Placed(sp, "orders_shadow", migrate.Old, "", bus.topic(migrate.Old, "orders_shadow"))
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
