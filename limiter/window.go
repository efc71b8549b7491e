package limiter

import "sync/atomic"

// A window is a ring of time buckets of atomic counters: a sliding window
// that the hot path updates with a handful of atomic adds and no locks.
// Counts that race with a bucket being recycled may be lost; windows feed
// breakers and metrics, which tolerate that, never the rate checks.
type window[F ~int] struct {
	width   int64 // bucket width, ns
	buckets []wbucket
	cur     atomic.Pointer[wbucket] // the bucket last returned, checked first (no division)
	// fold, when set, receives the counts of every recycled bucket, so
	// fold + the live buckets are lifetime totals.
	fold *[maxFields]atomic.Int64
}

const maxFields = 11

type wbucket struct {
	// at is the start time of the interval the counts belong to, plus one:
	// 0 (zeroed memory) is never used, so a new window costs no stores.
	at atomic.Int64
	v  [maxFields]atomic.Int64
}

// begin returns the bucket's start time, -1 when never used.
func (b *wbucket) begin() int64 { return b.at.Load() - 1 }

func newWindow[F ~int](n int, width int64) *window[F] {
	w := &window[F]{width: width, buckets: make([]wbucket, n)}
	w.cur.Store(&w.buckets[0])
	return w
}

// bucket returns the bucket for time now, recycling it if it holds an old
// interval.
func (w *window[F]) bucket(now int64) *wbucket {
	b := w.cur.Load()
	// One unsigned comparison: now lies in [start, start+width). An
	// unused bucket (at 0) never matches: now ≥ 0 > start.
	if at := b.at.Load(); at != 0 && uint64(now-(at-1)) < uint64(w.width) {
		return b
	}
	return w.slowBucket(now)
}

func (w *window[F]) slowBucket(now int64) *wbucket {
	start := now - now%w.width
	b := &w.buckets[(now/w.width)%int64(len(w.buckets))]
	if s := b.begin(); s != start {
		if s > start || !b.at.CompareAndSwap(s+1, start+1) {
			return b // a newer interval already owns it, or another goroutine recycles it
		}
		for i := range b.v {
			if v := b.v[i].Swap(0); v != 0 && w.fold != nil {
				w.fold[i].Add(v)
			}
		}
	}
	w.cur.Store(b)
	return b
}

// sum adds field f over the buckets inside (now-span, now].
func (w *window[F]) sum(now int64, fields ...F) (out [maxFields]int64) {
	span := w.width * int64(len(w.buckets))
	for i := range w.buckets {
		b := &w.buckets[i]
		s := b.begin()
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
		w.buckets[i].at.Store(0)
		for j := range w.buckets[i].v {
			w.buckets[i].v[j].Store(0)
		}
	}
}

// totals returns lifetime totals of every field (needs fold).
func (w *window[F]) totals() (out [maxFields]int64) {
	for i := range out {
		out[i] = w.fold[i].Load()
	}
	for i := range w.buckets {
		for j := range out {
			out[j] += w.buckets[i].v[j].Load()
		}
	}
	return out
}
