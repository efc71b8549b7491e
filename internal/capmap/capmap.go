package capmap

import (
	"iter"
	"sync"
)

// Map maps keys to values created on first use. The zero Map is empty and
// ready; it is safe for concurrent use. Values are never removed, so a *V
// handed out stays the key's for good (callers keep atomics in V).
type Map[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]*V
}

// Get returns the value of k, creating a zero one on first use. When the
// map already holds max keys, a new key k is counted under over(k) instead
// (created even past max: over maps every key to a few overflow keys, such
// as "other"). Finding an existing key is one read-locked look-up.
func (c *Map[K, V]) Get(k K, max int, over func(K) K) *V {
	c.mu.RLock()
	v := c.m[k]
	c.mu.RUnlock()
	if v != nil {
		return v
	}
	return c.create(k, max, over)
}

func (c *Map[K, V]) create(k K, max int, over func(K) K) *V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[K]*V{}
	}
	if v := c.m[k]; v != nil {
		return v
	}
	if len(c.m) >= max {
		k = over(k)
		if v := c.m[k]; v != nil {
			return v
		}
	}
	v := new(V)
	c.m[k] = v
	return v
}

// Lookup returns the value of k, or nil when k was never counted.
func (c *Map[K, V]) Lookup(k K) *V {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[k]
}

// Len returns the number of keys.
func (c *Map[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// All yields every key and value, in no order, under the read lock: the
// loop body must not call Get for a new key.
func (c *Map[K, V]) All() iter.Seq2[K, *V] {
	return func(yield func(K, *V) bool) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		for k, v := range c.m {
			if !yield(k, v) {
				return
			}
		}
	}
}
