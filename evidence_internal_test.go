package shadowlane

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shadowlane/shadowlane/shadow"
)

// A run evicted while it is the one counted last is forgotten: counting it
// again starts a new record, not the evicted one.
func TestRunBookLastRunEvicted(t *testing.T) {
	b := newRunBook(1, time.Now)
	a := b.get("a")
	b.decision("a", "sql", "orders", "orders_shadow", shadow.Redirect, 1)
	b.get("b") // evicts a
	if b.lookup("a") != nil {
		t.Fatal("a kept after eviction")
	}
	b.decision("a", "sql", "orders", "orders_shadow", shadow.Redirect, 1) // evicts b
	a2 := b.lookup("a")
	if a2 == nil || a2 == a {
		t.Fatalf("a counted into the evicted record (%p, was %p)", a2, a)
	}
	var s RunStatus
	a2.fill(&s)
	if len(s.Decisions) != 1 || s.Decisions[0].N != 1 {
		t.Fatalf("decisions %+v", s.Decisions)
	}
	b.setMax(0)
	if b.last.Load() != nil || b.lookup("a") != nil {
		t.Fatal("setMax(0) kept the last run")
	}
}

// Decisions are counted per key exactly, more keys than the remembered
// few and past the label cap (the keys over it counted as "other"),
// concurrently from several runs.
func TestRunBookDecisionCounts(t *testing.T) {
	b := newRunBook(4, time.Now)
	const workers, keys, rounds = 4, maxRunLabels + 10, 3
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := "r" + strconv.Itoa(w%2)
			for range rounds {
				for k := range keys {
					b.decision(run, "sql", "t"+strconv.Itoa(k), "", shadow.Redirect, 1)
					b.decision(run, "sql", "t0", "t0_shadow", shadow.Redirect, 2)
				}
			}
		}()
	}
	wg.Wait()
	for _, run := range []string{"r0", "r1"} {
		var s RunStatus
		b.lookup(run).fill(&s)
		got := map[string]int64{}
		for _, d := range s.Decisions {
			got[d.Target+"/"+d.To] += d.N
		}
		per := int64(workers / 2 * rounds)
		if got["t0/t0_shadow"] != 2*keys*per {
			t.Errorf("%s t0/t0_shadow = %d, want %d", run, got["t0/t0_shadow"], 2*keys*per)
		}
		var total int64
		for k, n := range got {
			total += n
			if k != "other/" && k != "t0/t0_shadow" && n != per {
				t.Errorf("%s %s = %d, want %d", run, k, n, per)
			}
		}
		if total != 3*keys*per {
			t.Errorf("%s total %d, want %d", run, total, 3*keys*per)
		}
		if len(got) != maxRunLabels+1 || got["other/"] == 0 {
			t.Errorf("%s: %d keys (other %d), want %d with other", run, len(got), got["other/"], maxRunLabels+1)
		}
	}
}
