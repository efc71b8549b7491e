package capmap

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func other(string) string { return "other" }

func TestGetCapsKeys(t *testing.T) {
	var m Map[string, atomic.Int64]
	for i := range 10 {
		m.Get(strconv.Itoa(i), 4, other).Add(1)
	}
	m.Get("0", 4, other).Add(1) // an existing key past the cap keeps its value
	got := map[string]int64{}
	for k, v := range m.All() {
		got[k] = v.Load()
	}
	want := map[string]int64{"0": 2, "1": 1, "2": 1, "3": 1, "other": 6}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if m.Len() != 5 || m.Lookup("7") != nil || m.Lookup("other").Load() != 6 {
		t.Fatalf("Len %d, Lookup(7) %v, Lookup(other) %v", m.Len(), m.Lookup("7"), m.Lookup("other"))
	}
}

func TestGetConcurrentSameValue(t *testing.T) {
	var m Map[string, atomic.Int64]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 1000 {
				m.Get(strconv.Itoa(i%50), 1<<10, other).Add(1)
			}
		})
	}
	wg.Wait()
	var total int64
	for _, v := range m.All() {
		total += v.Load()
	}
	if total != 8000 || m.Len() != 50 {
		t.Fatalf("total %d over %d keys, want 8000 over 50", total, m.Len())
	}
}

func TestGetFoundAllocatesNothing(t *testing.T) {
	var m Map[string, atomic.Int64]
	m.Get("a", 4, other)
	if n := testing.AllocsPerRun(100, func() { m.Get("a", 4, other).Add(1) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
