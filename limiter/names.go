package limiter

import (
	"sync"
	"sync/atomic"
)

// Names caches the resource handles an exit derives from application input
// (Redis command names, topics, ...), so the hot path is one lock-free map
// read. It is bounded: past max distinct keys, the rest share the resource
// prefix+"_other", so input cannot grow the limiter without limit.
// A Names is safe for concurrent use.
type Names struct {
	l      *Limiter
	prefix string
	max    int32
	norm   func(string) string
	m      sync.Map // key -> *Resource
	n      atomic.Int32
	other  *Resource
}

// Names returns a cache of resources named prefix+norm(key) (norm nil: the
// key as it is). A key that norm maps to "" uses the prefix+"_other"
// resource.
func (l *Limiter) Names(prefix string, max int, norm func(string) string) *Names {
	return &Names{l: l, prefix: prefix, max: int32(max), norm: norm, other: l.Resource(prefix + "_other")}
}

// Limiter returns the limiter the handles belong to.
func (c *Names) Limiter() *Limiter { return c.l }

// Resource returns the handle for key.
func (c *Names) Resource(key string) *Resource {
	if r, ok := c.m.Load(key); ok {
		return r.(*Resource)
	}
	if c.n.Load() >= c.max {
		return c.other
	}
	name := key
	if c.norm != nil {
		name = c.norm(key)
	}
	if name == "" {
		return c.other
	}
	r := c.l.Resource(c.prefix + name)
	if _, loaded := c.m.LoadOrStore(key, r); !loaded {
		c.n.Add(1)
	}
	return r
}
