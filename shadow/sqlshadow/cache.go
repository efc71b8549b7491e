package sqlshadow

import (
	"sync"
	"sync/atomic"
)

// cache is the bounded statement cache of a [Rewriter]: one decision per
// statement text.
//
//   - Hits are lock-free: the index is a sync.Map (a concurrent hash trie
//     whose Load takes no lock and does not allocate), and a hit sets the
//     entry's reference bit only when it is not already set, so a hot
//     statement is read without any shared write.
//   - Eviction is CLOCK (second chance), an approximation of LRU: when
//     full, the hand sweeps the ring of entries, clears the reference bits
//     it passes and evicts the first entry not referenced since the last
//     sweep. Memory stays bounded by the configured size, and the hit
//     ratio under skewed workloads stays close to an ideal LRU of the same
//     size (see TestCacheHitRatio), without the cliff of dropping half the
//     cache at once.
//   - Concurrent misses on the same text are collapsed: the first caller
//     computes, the others wait for its result (single flight), so a burst
//     of identical new statements parses once.
//
// The mutex is taken on misses only (inserting, evicting, in-flight
// bookkeeping); a miss parses a statement, which costs orders of magnitude
// more than the lock.
type cache struct {
	m    sync.Map // string -> *slot
	size atomic.Int64

	mu     sync.Mutex
	max    int
	ring   []*slot // CLOCK ring, len(ring) <= max
	hand   int
	flight map[string]*flight
}

type slot struct {
	key string
	e   *entry
	ref atomic.Bool
}

type flight struct {
	done chan struct{}
	e    *entry
}

func (c *cache) init(max int) {
	c.max = max
	c.ring = make([]*slot, 0, min(max, 1024))
	c.flight = map[string]*flight{}
}

// get returns the cached decision of k, or nil.
func (c *cache) get(k string) *entry {
	v, ok := c.m.Load(k)
	if !ok {
		return nil
	}
	s := v.(*slot)
	if !s.ref.Load() {
		s.ref.Store(true)
	}
	return s.e
}

// getOrCompute returns the cached decision of k, computing it with fn on a
// miss. Concurrent misses on the same k call fn once. If fn panics, the
// waiters compute again themselves.
func (c *cache) getOrCompute(k string, fn func() *entry) *entry {
	if e := c.get(k); e != nil {
		return e
	}
	c.mu.Lock()
	if v, ok := c.m.Load(k); ok {
		c.mu.Unlock()
		return v.(*slot).e
	}
	if f := c.flight[k]; f != nil {
		c.mu.Unlock()
		<-f.done
		if f.e != nil {
			return f.e
		}
		return fn()
	}
	f := &flight{done: make(chan struct{})}
	c.flight[k] = f
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.flight, k)
		if f.e != nil {
			c.insertLocked(k, f.e)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	f.e = fn()
	return f.e
}

// insertLocked adds k (absent from the index) and evicts with CLOCK when
// the cache is full. c.mu is held.
func (c *cache) insertLocked(k string, e *entry) {
	s := &slot{key: k, e: e}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, s)
		c.m.Store(k, s)
		c.size.Add(1)
		return
	}
	for {
		old := c.ring[c.hand]
		if old.ref.Load() {
			old.ref.Store(false)
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		c.m.Delete(old.key)
		c.ring[c.hand] = s
		c.m.Store(k, s)
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}

// len returns the number of cached decisions.
func (c *cache) len() int { return int(c.size.Load()) }
