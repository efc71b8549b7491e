package cache

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/shadowlane/shadowlane/bench/internal/measure"
	"github.com/shadowlane/shadowlane/propagation"
	"github.com/shadowlane/shadowlane/shadow/sqlshadow"
)

const size = 4096

// fakeDialect answers every statement at once (a table-free read) and
// counts its calls: each call is a miss of the Rewriter's cache.
type fakeDialect struct{ calls atomic.Int64 }

func (*fakeDialect) Name() string { return "sqlite" }

func (d *fakeDialect) Rewrite(q string, _ sqlshadow.RenameFunc) (sqlshadow.Result, error) {
	d.calls.Add(1)
	return sqlshadow.Result{SQL: q, Kind: sqlshadow.KindRead, Verified: &sqlshadow.Result{SQL: q, Kind: sqlshadow.KindRead}}, nil
}

type workload struct {
	name string
	keys []string
}

func makeWorkload(name string, distinct int, s float64) workload {
	r := rand.New(rand.NewPCG(7, 11))
	texts := make([]string, distinct)
	for i := range texts {
		texts[i] = "SELECT id, total FROM orders WHERE id = ? /* " + strconv.Itoa(i) + " */"
	}
	var z *rand.Zipf
	if s > 0 {
		z = rand.NewZipf(r, s, 1, uint64(distinct-1))
	}
	keys := make([]string, 1<<16)
	for i := range keys {
		if z != nil {
			keys[i] = texts[(z.Uint64()*7919)%uint64(distinct)]
		} else {
			keys[i] = texts[r.IntN(distinct)]
		}
	}
	return workload{name, keys}
}

var workloads = []workload{
	makeWorkload("zipf-10k", 10_000, 1.01),
	makeWorkload("zipf-100k", 100_000, 1.01),
	makeWorkload("uniform-10k", 10_000, 0),
}

type value struct{ sql string }

// impl is one cache under test: access returns whether k was a hit (and
// inserts it on a miss).
type impl struct {
	name string
	make func() func(k string) bool
}

var impls = []impl{
	{"shadowlane", func() func(string) bool {
		d := &fakeDialect{}
		rw, err := sqlshadow.New(d, sqlshadow.WithCacheSize(size))
		if err != nil {
			panic(err)
		}
		m := propagation.Mark{Run: "bench"}
		return func(k string) bool {
			n := d.calls.Load()
			rw.Rewrite(m, k)
			return d.calls.Load() == n
		}
	}},
	{"golang-lru", func() func(string) bool {
		c, _ := lru.New[string, *value](size)
		return func(k string) bool {
			if _, ok := c.Get(k); ok {
				return true
			}
			c.Add(k, &value{k})
			return false
		}
	}},
	{"otter", func() func(string) bool {
		c := otter.Must(&otter.Options[string, *value]{MaximumSize: size})
		return func(k string) bool {
			if _, ok := c.GetIfPresent(k); ok {
				return true
			}
			c.Set(k, &value{k})
			return false
		}
	}},
	{"ristretto", func() func(string) bool {
		c, err := ristretto.NewCache(&ristretto.Config[string, *value]{NumCounters: 10 * size, MaxCost: size, BufferItems: 64})
		if err != nil {
			panic(err)
		}
		return func(k string) bool {
			if _, ok := c.Get(k); ok {
				return true
			}
			c.Set(k, &value{k}, 1)
			return false
		}
	}},
}

// BenchmarkCache runs each workload through each cache, one goroutine:
// ns/op is the cache's own cost per access (a miss computes nothing), hit%
// its hit ratio after a warm-up pass over the workload.
func BenchmarkCache(b *testing.B) {
	for _, w := range workloads {
		for _, im := range impls {
			b.Run(w.name+"/"+im.name, func(b *testing.B) {
				access := im.make()
				for _, k := range w.keys {
					access(k)
				}
				hits, n := 0, 0
				b.ReportAllocs()
				measure.GrowStack(8)
				for b.Loop() {
					measure.Op(func() {
						if access(w.keys[n&(len(w.keys)-1)]) {
							hits++
						}
					})
					n++
				}
				b.ReportMetric(100*float64(hits)/float64(n), "hit%")
			})
		}
	}
}

// BenchmarkCacheHitParallel: every goroutine reads resident statements
// (1000 hot texts, all cached): the read path under contention.
func BenchmarkCacheHitParallel(b *testing.B) {
	hot := make([]string, 1000)
	for i := range hot {
		hot[i] = "SELECT * FROM orders WHERE id = ? /* " + strconv.Itoa(i) + " */"
	}
	for _, im := range impls {
		b.Run(im.name, func(b *testing.B) {
			access := im.make()
			for range 3 {
				for _, k := range hot {
					access(k)
				}
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(hot))
				for pb.Next() {
					access(hot[i%len(hot)])
					i++
				}
			})
		})
	}
}
