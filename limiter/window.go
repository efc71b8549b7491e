package limiter

import "sync/atomic"

// A window is a ring of time buckets of atomic counters: a sliding window
// that the hot path updates with a handful of atomic adds and no locks.
// Counts that race with a bucket being recycled may be lost; windows feed
// breakers and metrics, which tolerate that, never the rate checks.
type window[F ~int] struct {
	width   int64 // bucket width, ns
	buckets []wbucket
}

const maxFields = 10

type wbucket struct {
	start atomic.Int64 // start time of the interval the counts belong to; -1 = never used
	v     [maxFields]atomic.Int64
}

func newWindow[F ~int](n int, width int64) *window[F] {
	w := &window[F]{width: width, buckets: make([]wbucket, n)}
	for i := range w.buckets {
		w.buckets[i].start.Store(-1)
	}
	return w
}

// bucket returns the bucket for time now, recycling it if it holds an old
// interval.
func (w *window[F]) bucket(now int64) *wbucket {
	start := now - now%w.width
	b := &w.buckets[(now/w.width)%int64(len(w.buckets))]
	if s := b.start.Load(); s != start {
		if s > start || !b.start.CompareAndSwap(s, start) {
			return b // a newer interval already owns it, or another goroutine recycles it
		}
		for i := range b.v {
			b.v[i].Store(0)
		}
	}
	return b
}

func (w *window[F]) add(now int64, f F, n int64) { w.bucket(now).v[f].Add(n) }

// sum adds field f over the buckets inside (now-span, now].
func (w *window[F]) sum(now int64, fields ...F) (out [maxFields]int64) {
	span := w.width * int64(len(w.buckets))
	for i := range w.buckets {
		b := &w.buckets[i]
		s := b.start.Load()
		if s < 0 || s <= now-span || s > now {
			continue
		}
		for _, f := range fields {
			out[f] += b.v[f].Load()
		}
	}
	return out
}

// reset zeroes every bucket.
func (w *window[F]) reset() {
	for i := range w.buckets {
		w.buckets[i].start.Store(-1)
		for j := range w.buckets[i].v {
			w.buckets[i].v[j].Store(0)
		}
	}
}
